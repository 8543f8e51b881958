import { chmod, writeFile } from "node:fs/promises";
import { generateKeyPair } from "../runtime/index.js";
import { EXIT_CODES_HELP, ExitCode, UsageError, out, parse, type Command } from "./common.js";

const help = `Usage: swarmnet keygen [options]

Makes a CURVE key pair (Z85 text) for a gateway or a client.

Options:
  -o, --out NAME             write NAME.key (secret, mode 600) and NAME.pub instead of printing both
      --json                 print {"publicKey": ..., "secretKey": ...}
  -h, --help                 this help

Example (a gateway that lets one client in):
  swarmnet keygen --out gateway && swarmnet keygen --out laptop
  swarmnet gateway --host 0.0.0.0 --curve-secret gateway.key --curve-public gateway.pub --authorized-keys laptop.pub
  swarmnet ping gw-host:1857 --curve-public laptop.pub --curve-secret laptop.key --server-key gateway.pub

${EXIT_CODES_HELP}`;

const options = { out: { type: "string", short: "o" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } } as const;

export const keygenCommand: Command = {
  name: "keygen",
  summary: "make a CURVE key pair",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, options);
    if (values.help) return (out(help), ExitCode.OK);
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const { publicKey, secretKey } = generateKeyPair();
    if (values.out !== undefined) {
      await writeFile(`${values.out}.key`, `# swarmnet CURVE secret key: keep it private\n${secretKey}\n`, { mode: 0o600 });
      await chmod(`${values.out}.key`, 0o600);
      await writeFile(`${values.out}.pub`, `# swarmnet CURVE public key\n${publicKey}\n`);
      out(`wrote ${values.out}.key (secret) and ${values.out}.pub (public: ${publicKey})`);
    } else if (values.json) {
      out(JSON.stringify({ publicKey, secretKey }));
    } else {
      out(`public-key ${publicKey}`);
      out(`secret-key ${secretKey}`);
    }
    return ExitCode.OK;
  },
};
