import { TimeoutError } from "../runtime/index.js";
import {
  CONNECTION_HELP,
  EXIT_CODES_HELP,
  ExitCode,
  UnreachableError,
  connectionOptions,
  gatewayFrom,
  out,
  parse,
  type Command,
  withController,
} from "./common.js";

const help = `Usage: swarmnet list [ENDPOINT] [options]

Lists a gateway's subroutines, one per line: NAME<TAB>call (a batch call:
swarmnet call / send) or NAME<TAB>stream (a generator: swarmnet stream).
ENDPOINT (or -g) is host, host:port or tcp://host:port; the port is 1857 if left out.
The request needs no session: it takes no pool slot, so a full pool still
answers (--wait has nothing to wait for); the answer must come within
--connect-timeout.

Options:
      --json                 print [{"name": ..., "stream": true|false}, ...]
${CONNECTION_HELP}
  -h, --help                 this help

Example:
  swarmnet list 10.0.0.2

${EXIT_CODES_HELP}`;

const options = { ...connectionOptions, json: { type: "boolean" } } as const;

export const listCommand: Command = {
  name: "list",
  summary: "list a gateway's subroutines (and which stream)",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, options);
    if (values.help) return (out(help), ExitCode.OK);
    const endpoint = gatewayFrom("list", values, positionals, true);
    return withController(values, { endpoint }, async (controller) => {
      // Sessionless: no pool slot taken; the deadline is the controller's connectTimeoutMs (--connect-timeout).
      const subroutines = await controller.listSubroutines().catch((e: unknown) => {
        // No answer is an unreached gateway (exit 3), as refused and handshake failures are.
        throw e instanceof TimeoutError ? new UnreachableError(e) : e;
      });
      if (values.json) out(JSON.stringify(subroutines));
      else for (const { name, stream } of subroutines) out(`${name}\t${stream ? "stream" : "call"}`);
      return ExitCode.OK;
    });
  },
};
