import {
  CONNECTION_HELP,
  EXIT_CODES_HELP,
  ExitCode,
  connectionOptions,
  gatewayFrom,
  out,
  parse,
  type Command,
  withClient,
} from "./common.js";

const help = `Usage: swarmnet close [ENDPOINT] [options]

Asks a gateway to stop (pynetwork's close_gateway): it refuses new clients,
lets calls in flight finish and tells its clients. Refused (exit 4) by a
gateway started with allowRemoteClose: false. ENDPOINT (or -g) is host,
host:port or tcp://host:port; the port is 1857 if left out.

Options:
${CONNECTION_HELP}
  -h, --help                 this help

Example:
  swarmnet close 127.0.0.1:1857

${EXIT_CODES_HELP}`;

export const closeCommand: Command = {
  name: "close",
  summary: "ask a gateway to stop",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, connectionOptions);
    if (values.help) return (out(help), ExitCode.OK);
    const endpoint = gatewayFrom("close", values, positionals, true);
    return withClient("close", values, endpoint, async (client) => {
      await client.closeGateway();
      out(`gateway ${endpoint} is stopping`);
      return ExitCode.OK;
    });
  },
};
