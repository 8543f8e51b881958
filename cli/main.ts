/**
 * `swarmnet`: the command line. `bin/swarmnet.js` runs `run()` from this
 * module (through tsx in a source checkout, from dist/ once built).
 */
import { callCommand } from "./call.js";
import { closeCommand } from "./close.js";
import { listCommand } from "./list.js";
import { EXIT_CODES_HELP, ExitCode, UsageError, describeError, err, exitCodeOf, out, type Command } from "./common.js";
import { gatewayCommand } from "./gateway.js";
import { getCommand } from "./get.js";
import { inspectCommand } from "./inspect.js";
import { keygenCommand } from "./keygen.js";
import { pingCommand } from "./ping.js";
import { putCommand } from "./put.js";
import { sendCommand } from "./send.js";
import { streamCommand } from "./stream.js";

const commands: readonly Command[] = [
  gatewayCommand,
  pingCommand,
  listCommand,
  callCommand,
  sendCommand,
  streamCommand,
  getCommand,
  putCommand,
  inspectCommand,
  closeCommand,
  keygenCommand,
];

const help = `Usage: swarmnet COMMAND [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(9)} ${c.summary}`).join("\n")}

Run "swarmnet COMMAND --help" for a command's options. Every client command
takes the gateway as -g ENDPOINT (ping, list, close and inspect also as their
one argument); an endpoint is host, host:port or tcp://host:port (port 1857
when left out). Environment: SWARMNET_GATEWAY (default gateway),
SWARMNET_DEBUG=1 (print stacks), SWARMNET_QUIET=1, SWARMNET_TRACE=MODULES.

${EXIT_CODES_HELP}`;

/** Runs one command line; resolves with its exit code and never throws. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? err : out)(help);
    return name === undefined ? ExitCode.USAGE : ExitCode.OK;
  }
  const command = commands.find((c) => c.name === name);
  if (command === undefined) {
    err(`swarmnet: unknown command ${JSON.stringify(name)}\n\n${help}`);
    return ExitCode.USAGE;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      err(`swarmnet ${name}: ${error.message}\nRun "swarmnet ${name} --help" for usage.`);
    } else {
      err(`swarmnet ${name}: ${describeError(error)}`);
      if (process.env["SWARMNET_DEBUG"] === "1" && error instanceof Error) err(error.stack ?? "");
    }
    return exitCodeOf(error);
  }
}

/** Runs `main`, lets stdout drain, and exits with its code (sockets and timers cannot keep the process up). */
export async function run(argv: readonly string[]): Promise<never> {
  const code = await main(argv);
  await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
  await new Promise<void>((resolve) => process.stderr.write("", () => resolve()));
  process.exit(code);
}
