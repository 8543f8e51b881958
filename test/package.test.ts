/**
 * The package as a project that depends on it gets it: `npm pack` (its prepack
 * builds dist/), the tarball installed into a temporary project, both entry
 * points imported (and type-checked), the bin run, a gateway started from the
 * installed package and pinged by its CLI, and the README's first snippet run
 * against the installed package.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliProcess } from "./cli-helpers.js";
import { within } from "./helpers.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const TSX = join(ROOT, "node_modules", "tsx", "dist", "esm", "index.mjs");

let dir = "";
let project = "";
let bin = "";

describe("npm package", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "swarmnet-pack-"));
    // prepack runs `npm run build`: the tarball gets a fresh dist/.
    const packed = await run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: ROOT, timeout: 180_000 });
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    expect(info!.files.map((f) => f.path)).toEqual(expect.arrayContaining(["dist/runtime/index.js", "dist/runtime/index.d.ts", "dist/runtime/actors.d.ts", "dist/cli/main.js", "bin/swarmnet.js"]));
    expect(info!.files.some((f) => f.path.startsWith("test/") || f.path.endsWith(".ts") && !f.path.endsWith(".d.ts"))).toBe(false);
    project = join(dir, "project");
    await mkdir(project);
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "uses-swarmnet", version: "1.0.0", private: true, type: "module" }));
    // The registry is asked only for what the local npm cache lacks.
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", join(dir, info!.filename)], { cwd: project, timeout: 180_000 });
    bin = join(project, "node_modules", ".bin", "swarmnet");
  }, 360_000);
  afterAll(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it("both entry points import, with types, from the installed tarball", async () => {
    const { stdout } = await run(
      process.execPath,
      ["-e", 'const a = await import("swarmnet"); const b = await import("swarmnet/actors"); console.log(typeof a.Gateway, typeof a.Controller, typeof b.swarmClientMachine)', "--input-type=module"],
      { cwd: project, timeout: 30_000 },
    );
    expect(stdout.trim()).toBe("function function object");
    await writeFile(
      join(project, "typed.ts"),
      [
        'import { Controller, Gateway, type GatewayOptions, PoolFullError } from "swarmnet";',
        'import { swarmClientMachine, type SwarmClientEmitted } from "swarmnet/actors";',
        "const options: GatewayOptions = { port: 0, maxPoolSize: 2 };",
        "export const g: Gateway = new Gateway(options);",
        "export const c: Controller = new Controller({ port: 1857 });",
        "export const code: string = new PoolFullError().code;",
        "export const m = swarmClientMachine;",
        "export type E = SwarmClientEmitted;",
        "// @ts-expect-error: the types are real, so a wrong option is an error",
        "export const wrong = new Gateway({ port: 'x' });",
      ].join("\n"),
    );
    await writeFile(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          lib: ["ES2022", "ESNext.Disposable", "ESNext.AsyncIterable"],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ["node"],
          typeRoots: [join(ROOT, "node_modules", "@types")],
        },
        files: ["typed.ts"],
      }),
    );
    await run(process.execPath, [TSC, "-p", "."], { cwd: project, timeout: 120_000 });
  }, 150_000);

  it("the installed bin - --help, a gateway from the installed package, ping 127.0.0.1 against it", async () => {
    const help = await run(bin, ["--help"], { cwd: project, timeout: 30_000 });
    expect(help.stdout).toContain("Usage: swarmnet COMMAND");
    const gateway = new CliProcess(["gateway", "--port", "0"], { cwd: project, bin });
    try {
      const m = await gateway.waitFor(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/, 30_000);
      const ping = await run(bin, ["ping", `127.0.0.1:${m[1]}`], { cwd: project, timeout: 30_000 });
      expect(ping.stdout).toMatch(/pong from tcp:\/\/127\.0\.0\.1:\d+ \(handler 1\)/);
    } finally {
      await gateway.stop("SIGTERM");
    }
  }, 90_000);

  it("the README's first snippet runs as written in a project that installed swarmnet", async () => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    const code = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf("## Use")))![1]!;
    expect(code).toContain('from "swarmnet"');
    await writeFile(join(project, "snippet.ts"), code);
    const { stdout } = await within(run(process.execPath, ["--import", TSX, "snippet.ts"], { cwd: project, timeout: 60_000 }), 70_000, "snippet");
    expect(stdout).toContain("42");
  }, 90_000);
});
