#!/usr/bin/env node
// The `swarmnet` command. In a source checkout (cli/main.ts next to this file
// and tsx installed, as after `npm ci`) it runs the TypeScript entry through
// tsx in this same process, so no build step is needed and signals reach the
// command directly. Otherwise (the published package) it runs dist/cli/main.js
// from `npm run build`. SWARMNET_CLI_DIST=1 forces the built one.
import { existsSync } from "node:fs";

const source = new URL("../cli/main.ts", import.meta.url);
const built = new URL("../dist/cli/main.js", import.meta.url);

let entry;
if (process.env.SWARMNET_CLI_DIST !== "1" && existsSync(source)) {
  const tsx = await import("tsx/esm/api").catch(() => undefined);
  if (tsx !== undefined) {
    // Scoped to our own module graph: a user's plain-JS `--subroutines` module is
    // loaded by Node as usual (tsx would take an ESM .js without "type" for CJS).
    const api = tsx.register({ namespace: "swarmnet-cli" });
    entry = (specifier) => api.import(specifier, import.meta.url);
  }
}
if (entry === undefined) {
  if (!existsSync(built)) {
    process.stderr.write("swarmnet: dist/cli/main.js is missing: run `npm run build` (or install tsx to run from source)\n");
    process.exit(1);
  }
}
const { run } = entry !== undefined ? await entry(source.href) : await import(built.href);
await run(process.argv.slice(2));
