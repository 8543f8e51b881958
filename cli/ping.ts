import {
  CONNECTION_HELP,
  EXIT_CODES_HELP,
  ExitCode,
  connectionOptions,
  gatewayFrom,
  intFlag,
  out,
  parse,
  type Command,
  withClient,
} from "./common.js";

const help = `Usage: swarmnet ping [ENDPOINT] [options]

Connects to a gateway, gets a handler, and times round trips to it. ENDPOINT
(or -g) is host, host:port or tcp://host:port; the port is 1857 if left out.

Options:
  -c, --count N              round trips (default 1)
      --data TEXT            what to send (default "ping")
${CONNECTION_HELP}
  -h, --help                 this help

${EXIT_CODES_HELP}`;

const options = { ...connectionOptions, count: { type: "string", short: "c" }, data: { type: "string" } } as const;

export const pingCommand: Command = {
  name: "ping",
  summary: "round trips to a gateway's handler",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, options);
    if (values.help) return (out(help), ExitCode.OK);
    const endpoint = gatewayFrom("ping", values, positionals, true);
    const count = intFlag("count", values.count, 1);
    return withClient("ping", values, endpoint, async (client) => {
      const data = values.data ?? "ping";
      const times: number[] = [];
      let echoed: unknown;
      for (let i = 0; i < count; i++) {
        const t0 = performance.now();
        echoed = await client.ping(data);
        times.push(performance.now() - t0);
      }
      const mean = times.reduce((a, b) => a + b, 0) / times.length;
      out(
        `pong from ${client.endpoint} (handler ${client.handlerId}): ${JSON.stringify(echoed)}; ${count} round trip${count === 1 ? "" : "s"}, mean ${mean.toFixed(2)} ms`,
      );
      return ExitCode.OK;
    });
  },
};
