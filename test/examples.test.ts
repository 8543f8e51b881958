import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

describe("examples", () => {
  it("npm start demo - pings, calls, sends, closes the gateway and exits by itself", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/demo.ts"], { timeout: 60_000 });
    expect(stdout).toMatch(/gateway listening on tcp:\/\/127\.0\.0\.1:\d+/);
    expect(stdout).toContain('ping: "hello"');
    expect(stdout).toContain("batch get mount_usage(7) -> 47%");
    expect(stdout).toContain("batch send set_io -> 4");
    expect(stdout).toContain("SWARMNET_SUBROUTINE_NOT_FOUND");
    expect(stdout).toContain("swarm of 3");
    expect(stdout).toContain("demo done");
  });
});
