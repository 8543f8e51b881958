import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

describe("examples: rc-car", () => {
  it("the driver machine brakes, stops and drives on at the obstacle, survives the car's gateway restarting, then parks", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/rc-car/index.ts", "--inspect"], { timeout: 60_000 });
    const line = /^driver states: (.*)$/m.exec(stdout)?.[1];
    // The obstacle: brake, stand still, drive on. The restart: reconnecting (again while the car is not back yet), then cruising.
    expect(line).toMatch(
      /^connecting -> cruising -> braking -> stopped -> cruising -> (reconnecting -> connecting -> )+cruising -> parking -> parked$/,
    );
    expect(stdout).toMatch(/\[driver\] braking \(obstacle at \d+ cm/);
    expect(stdout).toMatch(/\[driver\] reconnecting \(SWARMNET_[A-Z_]+\)/);
    expect(stdout).toMatch(/steering commands: \d+ sent, \d+ acknowledged; reconnects: \d+/);
    // One inspect callback saw the driver and, under it, both client actors with their own children.
    expect(stdout).toContain("driver > sensors > client > wire");
    expect(stdout).toContain("driver > control > client > wire");
    expect(stdout).toContain("rc-car done");
  });
});
