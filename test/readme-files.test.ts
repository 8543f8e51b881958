import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tempDir } from "./helpers.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Runs the first ts block under `heading` in README.md, importing "swarmnet" from this checkout; returns its stdout. */
async function runSnippet(heading: string): Promise<string> {
  const readme = await readFile(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf(heading));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  expect(code).toBeDefined();
  const dir = await tempDir("swarmnet-readme-");
  // .mts: the temp folder has no package.json saying "type": "module".
  const file = join(dir, "snippet.mts");
  await writeFile(file, code!.replace(`from "swarmnet"`, `from ${JSON.stringify(join(ROOT, "runtime", "index.ts"))}`));
  const { stdout } = await run(process.execPath, ["--import", "tsx", file], { cwd: ROOT, timeout: 30_000 });
  return stdout;
}

describe("README", () => {
  it("the File transfer snippet runs as it stands", async () => {
    const stdout = await runSnippet("### File transfer");
    expect(stdout).toMatch(/downloads\/old\/app-1\.log/);
    expect(stdout).toMatch(/app\.log 6 6/);
    expect(stdout.trim().split("\n")).toContain("1");
  });

  it("the Streaming snippet runs as it stands", async () => {
    const stdout = await runSnippet("### Streaming");
    expect(stdout).toContain("callback items 100 finally ran 1");
    expect(stdout).not.toContain("eos"); // aborted by the callback: no end-of-stream callback
    expect(stdout).toContain("2 pin 4: 10");
    expect(stdout).toContain("merged 0,1,2,3,4,5,6,7,8,9,10,11");
  });
});
