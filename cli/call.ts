import {
  CONNECTION_HELP,
  EXIT_CODES_HELP,
  ExitCode,
  UsageError,
  asFlag,
  connectionOptions,
  decodeAs,
  formatValue,
  gatewayFrom,
  out,
  parse,
  toJson,
  type Command,
  withClient,
  subroutineCall,
} from "./common.js";

const help = `Usage: swarmnet call NAME [ARGS...] [options]

Batch get: calls subroutine NAME(...ARGS, kwargs) on the gateway and prints
what it returned. Each ARG is JSON: 7, true, '"text"', '[1,2]', '{"a":1}'.
Bytes are printed as text when they are printable UTF-8, else as hex; a
string as it is; any other value as JSON.

Options:
      --kwargs JSON          keyword arguments, a JSON object
      --raw                  write a bytes result to stdout exactly as received
      --json                 print the result as JSON (bytes as {"bytes": "<hex>"})
      --as TYPE              read a bytes result as int (8-byte big-endian, pynetwork's
                             int_to_bytes), float or double (8-byte IEEE 754), string
                             (UTF-8) or json (UTF-8 JSON text)
${CONNECTION_HELP}
  -h, --help                 this help

Example:
  swarmnet call mount_usage 7 -g 10.0.0.2:1857

${EXIT_CODES_HELP}`;

const options = {
  ...connectionOptions,
  kwargs: { type: "string" },
  raw: { type: "boolean" },
  json: { type: "boolean" },
  as: { type: "string" },
} as const;

export const callCommand: Command = {
  name: "call",
  summary: "batch get: call a subroutine, print its result",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, options);
    if (values.help) return (out(help), ExitCode.OK);
    const endpoint = gatewayFrom("call", values, positionals, false);
    const { name, args, kwargs } = subroutineCall(positionals, values.kwargs);
    const as = asFlag(values.as);
    if (as !== undefined && values.raw) throw new UsageError("--as and --raw exclude each other");
    return withClient("call", values, endpoint, async (client) => {
      const result = decodeAs(await client.getSubroutineBatch<unknown>(name, args, kwargs), as);
      if (values.raw && result instanceof Uint8Array) process.stdout.write(result);
      else out(values.json ? toJson(result) : formatValue(result));
      return ExitCode.OK;
    });
  },
};
