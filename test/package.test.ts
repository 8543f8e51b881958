/**
 * The package as a project that depends on it gets it: `npm pack` (its prepack
 * builds dist/), the tarball installed into a temporary project, its three entry
 * points (`swarmnet`, `swarmnet/actors`, `swarmnet/internal`) imported and type-checked, the bin run, a gateway started from the
 * installed package and pinged by its CLI, and the README's first snippet and
 * worker-threads pair run against the installed package.
 *
 * The project is set up as the README's quick start says, `npm install swarmnet`
 * and tsx in its node_modules (this checkout's, linked: a dev tool, not what is
 * tested), and the snippets run with that tsx.
 *
 * Cost: the build (prepack's tsc) is most of it. The dependencies are fetched
 * (from the npm cache when it has them) while it runs, without being saved as
 * the project's own: installing the tarball then adds swarmnet alone, and npm
 * would prune any of them that the tarball's package.json does not require.
 * The checks share the one installed project and run concurrently.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
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

let dir = "";
let project = "";
let bin = "";
/** The project's tsx (the README's `npm install -D tsx`): what `npx tsx snippet.ts` runs. */
let tsx = "";

/** npm without the audit and funding round trips; the registry is asked only for what the local npm cache lacks. */
const NPM_QUIET = ["--prefer-offline", "--no-audit", "--no-fund"];

describe.concurrent("npm package", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "swarmnet-pack-"));
    project = join(dir, "project");
    await mkdir(project);
    await writeFile(
      join(project, "package.json"),
      JSON.stringify({ name: "uses-swarmnet", version: "1.0.0", private: true, type: "module" }),
    );
    const ours = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    const [packed] = await Promise.all([
      // prepack runs `npm run build`: the tarball gets a fresh dist/.
      run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: ROOT, timeout: 180_000 }),
      // Meanwhile swarmnet's dependencies, not saved: the project's package.json names swarmnet alone.
      run("npm", ["install", "--no-save", ...NPM_QUIET, ...Object.entries(ours.dependencies).map(([name, range]) => `${name}@${range}`)], {
        cwd: project,
        timeout: 180_000,
      }),
    ]);
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    expect(info!.files.map((f) => f.path)).toEqual(
      expect.arrayContaining([
        "dist/runtime/index.js",
        "dist/runtime/index.d.ts",
        "dist/runtime/actors.d.ts",
        "dist/runtime/internal.js",
        "dist/runtime/internal.d.ts",
        "dist/cli/main.js",
        "bin/swarmnet.js",
      ]),
    );
    expect(info!.files.some((f) => f.path.startsWith("test/") || (f.path.endsWith(".ts") && !f.path.endsWith(".d.ts")))).toBe(false);
    await run("npm", ["install", ...NPM_QUIET, join(dir, info!.filename)], { cwd: project, timeout: 180_000 });
    const manifest = JSON.parse(await readFile(join(project, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    expect(Object.keys(manifest.dependencies)).toEqual(["swarmnet"]);
    bin = join(project, "node_modules", ".bin", "swarmnet");
    // tsx where the project's modules (and swarmnet's worker thread, for a .ts subroutine module) find it.
    await symlink(join(ROOT, "node_modules", "tsx"), join(project, "node_modules", "tsx"), "dir");
    tsx = join(project, "node_modules", "tsx", "dist", "cli.mjs");
  }, 360_000);
  afterAll(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it("the three entry points import, with types, from the installed tarball; test hooks only from swarmnet/internal", async ({
    expect,
  }) => {
    const { stdout } = await run(
      process.execPath,
      [
        "-e",
        'const a = await import("swarmnet"); const b = await import("swarmnet/actors"); const c = await import("swarmnet/internal"); console.log(typeof a.Gateway, typeof a.Controller, typeof b.swarmClientMachine, typeof c.MemoryHub, "MemoryHub" in a)',
        "--input-type=module",
      ],
      { cwd: project, timeout: 30_000 },
    );
    expect(stdout.trim()).toBe("function function object function false");
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
        'import { MemoryHub, crashHandlerForTest, type InternalGatewayOptions } from "swarmnet/internal";',
        "const internal: InternalGatewayOptions = { transport: new MemoryHub(), testHooks: {} };",
        "export const crashed: boolean = crashHandlerForTest(new Gateway(internal), 1);",
        "// @ts-expect-error: the user's GatewayOptions has no test hooks",
        "export const hooks: GatewayOptions = { testHooks: {} };",
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

  it("the installed bin - --help, a gateway from the installed package serving the README's subs.ts on a thread, ping, list and call against it", async ({
    expect,
  }) => {
    const help = await run(bin, ["--help"], { cwd: project, timeout: 30_000 });
    expect(help.stdout).toContain("Usage: swarmnet COMMAND");
    // The bin runs on plain node; with tsx in the project, a TypeScript module still loads in the worker threads.
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    const subs = /```ts\n(\/\/ subs\.ts[\s\S]*?)```/.exec(readme)![1]!;
    await mkdir(join(project, "cli"));
    await writeFile(join(project, "cli", "subs.ts"), subs);
    const gateway = new CliProcess(["gateway", "--port", "0", "--subroutines", "./cli/subs.ts", "--threads", "1"], { cwd: project, bin });
    try {
      const m = await gateway.waitFor(/listening on tcp:\/\/127\.0\.0\.1:(\d+)/, 30_000);
      const ping = await run(bin, ["ping", `127.0.0.1:${m[1]}`], { cwd: project, timeout: 30_000 });
      expect(ping.stdout).toMatch(/pong from tcp:\/\/127\.0\.0\.1:\d+ \(handler 1\)/);
      const list = await run(bin, ["list", `127.0.0.1:${m[1]}`], { cwd: project, timeout: 30_000 });
      expect(list.stdout).toBe("crunch\tcall\nreadings\tstream\n");
      const call = await run(bin, ["call", "crunch", "1000", "--kwargs", '{"round":true}', "-g", `127.0.0.1:${m[1]}`], {
        cwd: project,
        timeout: 30_000,
      });
      expect(JSON.parse(call.stdout)).toEqual({ sum: 21097, onWorker: true });
    } finally {
      await gateway.stop("SIGTERM");
    }
  }, 90_000);

  it("the README's first snippet runs as written in a project that installed swarmnet", async ({ expect }) => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    const code = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf("## Use")))![1]!;
    expect(code).toContain('from "swarmnet"');
    await writeFile(join(project, "snippet.ts"), code);
    const { stdout } = await within(run(process.execPath, [tsx, "snippet.ts"], { cwd: project, timeout: 60_000 }), 70_000, "snippet");
    expect(stdout.split("\n").slice(0, 3)).toEqual(["hello", "42", "2"]);
  }, 90_000);

  it("the README's worker-threads pair runs as written there too: the installed package's worker loads subs.ts under tsx", async ({
    expect,
  }) => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### CPU-heavy subroutines"));
    const [subs, gateway] = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].slice(0, 2).map((m) => m[1]!);
    expect(subs).toMatch(/^\/\/ subs\.ts/);
    await mkdir(join(project, "threads"));
    await writeFile(join(project, "threads", "subs.ts"), subs!);
    await writeFile(join(project, "threads", "gateway.ts"), gateway!);
    const { stdout } = await within(
      run(process.execPath, [tsx, "gateway.ts"], { cwd: join(project, "threads"), timeout: 60_000 }),
      70_000,
      "threads",
    );
    expect(stdout.trim().split("\n")).toEqual([
      "[ 'crunch', 'readings' ]",
      "{ sum: 666667166, onWorker: true }",
      "0 reading 0",
      "1 reading 1",
    ]);
  }, 90_000);
});
