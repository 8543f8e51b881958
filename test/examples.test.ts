import { execFile } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tempDir } from "./helpers.js";

const run = promisify(execFile);

describe("examples", () => {
  it("npm start demo - pings, calls, sends, streams, downloads over a swarm of 4, prints a summary and exits by itself", async () => {
    const out = await tempDir("swarmnet-demo-out-");
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/demo.ts", "--out", out], { timeout: 60_000 });
    expect(stdout).toMatch(/gateway listening on tcp:\/\/127\.0\.0\.1:\d+/);
    expect(stdout).toContain('ping: "hello"');
    expect(stdout).toContain("batch get mount_usage(7) -> 47%");
    expect(stdout).toContain("batch send set_io -> 4");
    expect(stdout).toContain("SWARMNET_SUBROUTINE_NOT_FOUND");
    expect(stdout).toContain("swarm of 3");
    expect(stdout).toContain("stream sensor(4): 20000 readings");
    expect(stdout).toMatch(/swarm of 4 downloaded 48 files \([\d.]+ MiB\)/);
    expect(stdout).toMatch(/stream +[\d,]+ items\/s/);
    expect(stdout).toMatch(/download +[\d.]+ MiB\/s \(48 files/);
    expect(stdout).toContain("demo done");
    const files = await readdir(join(out, "sensor-logs"), { recursive: true });
    expect(files.filter((f) => f.endsWith(".log"))).toHaveLength(48);
    expect(files.some((f) => f.endsWith(".part"))).toBe(false);
  });

  it("inspect-transitions - a plain inspect callback logs every transition of the gateway's and the controller's machines", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/inspect-transitions/index.ts"], { timeout: 60_000 });
    expect(stdout).toContain("[gateway] gateway: idle -> starting  (start)");
    expect(stdout).toContain("[gateway] supervisor: (new) -> running.accepting");
    expect(stdout).toMatch(/\[gateway\] handler-1\.0: idle -> busy\.batchGet {2}\(call\.async\)/);
    expect(stdout).toMatch(/\[gateway\] handler-1\.0: busy\.batchGet -> idle {2}\(call\.done\)/);
    expect(stdout).toMatch(/\[gateway\] handler-1\.0: idle -> busy\.streaming {2}\(stream\.open\)/);
    expect(stdout).toMatch(/\[gateway\] handler-1\.0: idle -> closed \(done\) {2}\(session\.close\)/);
    expect(stdout).toContain("[controller] client-1: connecting -> ready  (gateway.welcome)");
    expect(stdout).toContain("[gateway] gateway: stopping.closing -> stopped (done)");
    expect(stdout).toContain("double(21) = 42");
    expect(stdout).toContain("inspect-transitions done");
  });

  it("every example has an npm script (npm start for the demo)", async () => {
    const pkg = JSON.parse(await readFile("package.json", "utf8")) as { scripts: Record<string, string> };
    const scripts = Object.values(pkg.scripts).join("\n");
    expect(pkg.scripts["start"]).toContain("examples/demo.ts");
    for (const entry of await readdir("examples", { withFileTypes: true })) {
      const path = entry.isDirectory() ? `examples/${entry.name}/index.ts` : `examples/${entry.name}`;
      expect(scripts, path).toContain(path);
    }
  });

  it("sensor-stream - three sensor streams over a swarm of three, one aborted, a control command sent back", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/sensor-stream/index.ts", "--readings", "40"], {
      timeout: 60_000,
    });
    expect(stdout).toContain("temperature: end of stream");
    expect(stdout).toContain("humidity: end of stream");
    expect(stdout).toContain("pressure: aborted after 10 readings");
    expect(stdout).toMatch(/temperature: 40 readings/);
    expect(stdout).toMatch(/humidity: 40 readings/);
    expect(stdout).toContain("[gateway] sensor pressure closed"); // the aborted generator's finally ran
    expect(stdout).toContain("[gateway] fan ON");
    expect(stdout).toContain("sensor-stream done");
  });

  it("file-backup - usage past the threshold: old logs downloaded over a swarm, verified, then removed on the gateway", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/file-backup/index.ts"], { timeout: 60_000 });
    expect(stdout).toContain("mount usage 80% (threshold 70%)");
    expect(stdout).toMatch(/backed up 19 old logs \(\d+ bytes, SHA-256 verified\) over a swarm of 4/);
    expect(stdout).toContain("[gateway] removed 19 logs");
    expect(stdout).toContain("mount usage now 28%");
    expect(stdout).toContain("backup folder holds 19 logs");
    expect(stdout).toContain("file-backup done");
  });
});
