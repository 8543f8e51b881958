import { readFile } from "node:fs/promises";
import {
  CONNECTION_HELP,
  EXIT_CODES_HELP,
  ExitCode,
  UsageError,
  connectionOptions,
  gatewayFrom,
  out,
  parse,
  type Command,
  withClient,
  subroutineCall,
} from "./common.js";

const help = `Usage: swarmnet send NAME FILE|- [ARGS...] [options]

Batch send: the bytes of FILE (or of stdin, with -) reach subroutine NAME as
kwargs.buffer; NAME(...ARGS, kwargs) runs on the gateway and the integer it
returned is printed. Each ARG is JSON.

Options:
      --kwargs JSON          more keyword arguments, a JSON object
${CONNECTION_HELP}
  -h, --help                 this help

Example:
  echo "LED on" | swarmnet send set_io - 4 true

${EXIT_CODES_HELP}`;

const options = { ...connectionOptions, kwargs: { type: "string" } } as const;

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export const sendCommand: Command = {
  name: "send",
  summary: "batch send: bytes of a file or stdin to a subroutine",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, options);
    if (values.help) return (out(help), ExitCode.OK);
    const endpoint = gatewayFrom("send", values, positionals, false);
    const { name, extra, args, kwargs } = subroutineCall(positionals, values.kwargs, ["FILE (or - for stdin)"]);
    const source = extra[0]!;
    let bytes: Uint8Array;
    try {
      bytes = source === "-" ? await readStdin() : await readFile(source);
    } catch (e) {
      throw new UsageError(`cannot read ${source}: ${(e as Error).message}`);
    }
    return withClient("send", values, endpoint, async (client) => {
      out(String(await client.sendSubroutineBatch(name, bytes, args, kwargs)));
      return ExitCode.OK;
    });
  },
};
