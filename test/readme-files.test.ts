import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it, onTestFinished } from "vitest";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Every ```ts block of README.md (indented ones in lists too), with the heading above it. */
async function tsBlocks(): Promise<{ heading: string; code: string }[]> {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  const blocks: { heading: string; code: string }[] = [];
  let heading = "";
  const lines = readme.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^#{1,4} /.test(line)) heading = line.replace(/^#+ /, "");
    const open = /^( *)```ts$/.exec(line);
    if (!open) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i]!.trim() !== "```"; i++) body.push(lines[i]!.slice(indent));
    blocks.push({ heading, code: body.join("\n") });
  }
  return blocks;
}

/**
 * Runs one README block as a user's snippet.ts would run in a project that
 * installed swarmnet, with "swarmnet" mapped to this checkout's sources. The
 * file lives in a folder inside the checkout (removed afterwards) so that its
 * other imports (xstate) resolve as in that project.
 */
async function runSnippet(code: string, besides: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(ROOT, ".readme-snippet-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "snippet.mts");
  const source = code
    .replaceAll(`from "swarmnet/actors"`, `from ${JSON.stringify(join(ROOT, "runtime", "actors.ts"))}`)
    .replaceAll(`from "swarmnet"`, `from ${JSON.stringify(join(ROOT, "runtime", "index.ts"))}`);
  await writeFile(file, source);
  for (const [name, text] of Object.entries(besides)) await writeFile(join(dir, name), text);
  const { stdout } = await run(process.execPath, ["--import", "tsx", file], { cwd: dir, timeout: 45_000 });
  return stdout;
}

async function snippetUnder(heading: string): Promise<string> {
  const block = (await tsBlocks()).find((b) => b.heading === heading);
  expect(block, heading).toBeDefined();
  return runSnippet(block!.code);
}

describe("README", () => {
  it("every ts block is a whole program (imports what it uses) and runs as written", async () => {
    const blocks = await tsBlocks();
    expect(blocks.map((b) => b.heading)).toEqual([
      "Use",
      "Streaming",
      "CPU-heavy subroutines: worker threads",
      "CPU-heavy subroutines: worker threads",
      "Supervision and inspection",
      "File transfer",
      "Security",
      "Composing actors",
      "A Pi streams sensor readings to a Node gateway",
    ]);
    // Run by their own tests: the worker-threads pair of files (below), and the Pi block with its Python side
    // (the Python client's test).
    const runnable = blocks.filter((b) => !b.heading.startsWith("CPU-heavy") && !b.heading.startsWith("A Pi"));
    for (const block of runnable) expect(block.code, block.heading).toMatch(/from "swarmnet(\/actors)?"/);
    // Use and Streaming and File transfer run with their own checks below.
    const others = blocks.filter((b) => ["Supervision and inspection", "Security", "Composing actors"].includes(b.heading));
    const [inspect, curve, actors] = await Promise.all(others.map((b) => runSnippet(b.code)));
    expect(inspect).toContain('handler-1.0 {"busy":"batchGet"} call.async');
    expect(inspect!).toContain('handler-1.0 "idle" call.done');
    expect(curve!.trim()).toBe("over CURVE");
    expect(actors!.trim().split("\n")).toEqual(["0 { distanceCm: 100 }", "1 { distanceCm: 99 }", "2 { distanceCm: 98 }"]);
  });

  it("the Use snippet runs as it stands: a pool of 5 holds the client and a swarm of 4", async () => {
    const stdout = await snippetUnder("Use");
    expect(stdout.split("\n").slice(0, 3)).toEqual(["hello", "42", "2"]);
    expect(stdout).toContain("name: 'mount_usage', stream: false");
  });

  it("the worker-threads pair runs as it stands: subs.ts beside gateway.ts, loaded on worker threads", async () => {
    const [subs, gateway] = (await tsBlocks()).filter((b) => b.heading === "CPU-heavy subroutines: worker threads");
    // Each block names its file on its first line; the gateway loads the module by that name, next to itself.
    const name = /^\/\/ (\w+\.ts)\b/.exec(subs!.code)?.[1];
    expect(name).toBe("subs.ts");
    expect(gateway!.code).toMatch(/^\/\/ gateway\.ts, next to subs\.ts/);
    expect(gateway!.code).toContain(`new URL("./${name}", import.meta.url)`);
    const stdout = await runSnippet(gateway!.code, { [name!]: subs!.code });
    expect(stdout.trim().split("\n")).toEqual([
      "[ 'crunch', 'readings' ]",
      "{ sum: 666667166, onWorker: true }",
      "0 reading 0",
      "1 reading 1",
    ]);
  });

  it("the File transfer snippet runs as it stands", async () => {
    const stdout = await snippetUnder("File transfer");
    expect(stdout).toMatch(/downloads\/old\/app-1\.log/);
    expect(stdout).toMatch(/app\.log 6 6/);
    expect(stdout.trim().split("\n")).toContain("1");
  });

  it("the Streaming snippet runs as it stands", async () => {
    const stdout = await snippetUnder("Streaming");
    expect(stdout).toContain("callback items 100 finally ran 1");
    expect(stdout).not.toContain("eos"); // aborted by the callback: no end-of-stream callback
    expect(stdout).toContain("2 pin 4: 10");
    expect(stdout).toContain("merged 0,1,2,3,4,5,6,7,8,9,10,11");
  });
});
