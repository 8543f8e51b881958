import { AbortedError } from "../runtime/index.js";
import {
  CONNECTION_HELP,
  EXIT_CODES_HELP,
  ExitCode,
  UsageError,
  asFlag,
  connectionOptions,
  decodeAs,
  err,
  formatValue,
  gatewayFrom,
  intFlag,
  onInterrupt,
  out,
  parse,
  toJson,
  type Command,
  withClient,
  subroutineCall,
} from "./common.js";

const help = `Usage: swarmnet stream NAME [ARGS...] [options]

Streams generator subroutine NAME(...ARGS, kwargs) and prints each item as it
arrives, one line "IDENT<TAB>VALUE" (bytes as text when printable, else hex;
strings as they are, other values as JSON). Ctrl-C aborts the stream cleanly: the generator's
finally runs on the gateway, the handler is released, exit code 130.

Options:
      --kwargs JSON          keyword arguments, a JSON object
  -n, --limit N              stop (abort) after N items
      --json                 one JSON line per item: [ident, value]
      --raw                  write the items' bytes to stdout, nothing else
      --as TYPE              read byte items as int, float, double, string or json
                             (as swarmnet call --as)
      --idle-timeout MS      longest gap between two items once the first came
                             (default: none; --timeout bounds the first item)
${CONNECTION_HELP}
  -h, --help                 this help

Example:
  swarmnet stream sensor 4 55 --limit 100

${EXIT_CODES_HELP}`;

const options = {
  ...connectionOptions,
  kwargs: { type: "string" },
  limit: { type: "string", short: "n" },
  json: { type: "boolean" },
  raw: { type: "boolean" },
  as: { type: "string" },
  "idle-timeout": { type: "string" },
} as const;

export const streamCommand: Command = {
  name: "stream",
  summary: "stream a generator subroutine, print items as they arrive",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, options);
    if (values.help) return (out(help), ExitCode.OK);
    const endpoint = gatewayFrom("stream", values, positionals, false);
    const { name, args, kwargs } = subroutineCall(positionals, values.kwargs);
    if (values.json && values.raw) throw new UsageError("--json and --raw exclude each other");
    const as = asFlag(values.as);
    if (as !== undefined && values.raw) throw new UsageError("--as and --raw exclude each other");
    const idleTimeoutMs = values["idle-timeout"] === undefined ? undefined : intFlag("idle-timeout", values["idle-timeout"], 1);
    const limit = values.limit === undefined ? Infinity : intFlag("limit", values.limit, 1);
    const interrupt = new AbortController();
    const dispose = onInterrupt(() => interrupt.abort(new AbortedError("interrupted (Ctrl-C)")));
    let count = 0;
    try {
      return await withClient("stream", values, endpoint, async (client) => {
        const streamOptions = { signal: interrupt.signal, ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}) };
        for await (const [ident, raw] of client.stream<unknown>(name, args, kwargs, streamOptions)) {
          const item = decodeAs(raw, as);
          count++;
          if (values.raw) {
            if (item instanceof Uint8Array) process.stdout.write(item);
          } else {
            out(values.json ? toJson([ident, item]) : `${ident}\t${formatValue(item)}`);
          }
          if (count >= limit) break;
        }
        err(count >= limit ? `stopped after ${count} items (--limit)` : `end of stream after ${count} items`);
        return ExitCode.OK;
      });
    } catch (e) {
      if (interrupt.signal.aborted) {
        err(`aborted after ${count} items`);
        return ExitCode.INTERRUPTED;
      }
      throw e;
    } finally {
      dispose();
    }
  },
};
