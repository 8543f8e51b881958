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
});
