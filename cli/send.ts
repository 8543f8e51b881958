import { readFile } from "node:fs/promises";
import {
  CONNECTION_HELP,
  EXIT_CODES_HELP,
  ExitCode,
  UsageError,
  connectClient,
  connectionOptions,
  controllerFrom,
  gatewayFrom,
  jsonArg,
  kwargsFlag,
  out,
  parse,
  type Command,
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
    const [name, source, ...rest] = positionals;
    if (name === undefined) throw new UsageError("missing subroutine NAME");
    if (source === undefined) throw new UsageError("missing FILE (or - for stdin)");
    const args = rest.map((a, i) => jsonArg(`argument ${i + 1}`, a));
    const kwargs = kwargsFlag(values.kwargs);
    let bytes: Uint8Array;
    try {
      bytes = source === "-" ? await readStdin() : await readFile(source);
    } catch (e) {
      throw new UsageError(`cannot read ${source}: ${(e as Error).message}`);
    }
    const controller = controllerFrom(values, { endpoint });
    try {
      const client = await connectClient("send", controller, values);
      out(String(await client.sendSubroutineBatch(name, bytes, args, kwargs)));
      return ExitCode.OK;
    } finally {
      await controller.close();
    }
  },
};
