import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { LatencyRelay } from "../bench/relay.js";
import { tempDir, within } from "./helpers.js";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const BENCH_DEADLINE_MS = 150_000;

/** Runs `tsx bench/run.ts ...args`, killed if it outlives `timeoutMs`. */
function runBench(args: readonly string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "bench/run.ts", ...args],
      { cwd: REPO_ROOT, timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

interface ReportShape {
  schema: number;
  machine: { cpuCount: number };
  versions: { node: string };
  options: { quick: boolean; runs: number; coldRuns: number };
  workloads: {
    id: string;
    metrics: { key: string }[];
    systems: Record<string, { status: string; runs?: Record<string, number>[]; median?: Record<string, number> }>;
    ratios: Record<string, Record<string, number | null>>;
  }[];
}

describe("npm run bench --quick", () => {
  it(
    "W1 and W2 complete for every system and write a report with medians and ratios",
    async () => {
      const out = await tempDir("swarmnet-bench-");
      // Cold rows are checked below, on one system: four systems twice over would double this test.
      const result = await runBench(["--quick", "W1", "W2", "--cold", "0", "--out", out], BENCH_DEADLINE_MS - 10_000);
      expect(result, result.stderr).toMatchObject({ code: 0 });
      expect(result.stdout).toContain("vs zeromq.js");

      const report = JSON.parse(await readFile(path.join(out, "latest.json"), "utf8")) as ReportShape;
      expect(report).toMatchObject({ schema: 2, options: { quick: true, coldRuns: 0 }, versions: { node: process.version } });
      expect(report.workloads.map((w) => w.id)).toEqual(["W1", "W2"]);
      for (const workload of report.workloads) {
        for (const system of ["swarmnet", "zeromq", "grpc", "tcp"]) {
          const outcome = workload.systems[system];
          expect(outcome, `${workload.id} ${system}`).toMatchObject({ status: "ok" });
          expect(outcome?.runs).toHaveLength(report.options.runs);
          for (const { key } of workload.metrics) {
            expect(Number.isFinite(outcome?.median?.[key]), `${workload.id} ${system} ${key}`).toBe(true);
          }
        }
        for (const peer of ["zeromq", "grpc", "tcp"]) {
          for (const { key } of workload.metrics) {
            expect(workload.ratios[peer]?.[key], `${workload.id} ratio to ${peer} ${key}`).toBeGreaterThan(0);
          }
        }
      }
      const md = await readFile(path.join(out, "latest.md"), "utf8");
      expect(md).toMatch(/^\| workload \| metric \| swarmnet \|/);
      expect(md).toMatch(/^\| W2 batch get \| calls ops\/s ↑ \| [\d,.]+ \|/m);
      const svg = await readFile(path.join(out, "latest.svg"), "utf8");
      expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\n$/);
    },
    BENCH_DEADLINE_MS,
  );

  it(
    "a cold row: each run in freshly started server and client processes, beside the warm row",
    async () => {
      const out = await tempDir("swarmnet-bench-");
      const result = await runBench(
        ["--quick", "W1", "--systems", "swarmnet", "--runs", "1", "--cold", "2", "--out", out],
        BENCH_DEADLINE_MS - 10_000,
      );
      expect(result, result.stderr).toMatchObject({ code: 0 });
      expect(result.stdout).toMatch(/^W1-cold ping, cold /m);
      expect(result.stdout).toContain("-cold rows: median of 2 runs, each in fresh processes without a warm-up");
      // Two cold sessions, each its own pair of processes.
      expect(result.stderr).toMatch(/W1-cold ping \/ swarmnet: 2 runs/);
      const report = JSON.parse(await readFile(path.join(out, "latest.json"), "utf8")) as ReportShape;
      expect(report.options).toMatchObject({ runs: 1, coldRuns: 2 });
      expect(report.workloads.map((w) => w.id)).toEqual(["W1", "W1-cold"]);
      const cold = report.workloads[1]!.systems["swarmnet"];
      expect(cold).toMatchObject({ status: "ok" });
      expect(cold?.runs).toHaveLength(2);
      expect(cold?.median?.["p50Us"]).toBeGreaterThan(0);
    },
    BENCH_DEADLINE_MS,
  );

  it("an unknown workload is refused with usage and exit code 2", async () => {
    const result = await runBench(["W99", "--out", await tempDir("swarmnet-bench-")], 20_000);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown workload W99");
  });
});

describe("latency relay", () => {
  async function echoServer(): Promise<number> {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.pipe(socket);
    });
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as net.AddressInfo).port;
  }

  it("forwards bytes both ways in order, each way delayed, and passes on the end of stream", async () => {
    const delayMs = 25;
    const relay = new LatencyRelay({ targetHost: "127.0.0.1", targetPort: await echoServer(), delayMs });
    const port = await relay.start();
    onTestFinished(() => relay.stop());

    const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    onTestFinished(() => void socket.destroy());
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise<void>((resolve, reject) => {
      socket.once("end", resolve);
      socket.once("error", reject);
    });
    const payload = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
    await within(new Promise((resolve) => socket.once("connect", resolve)), 5_000, "connecting to the relay");
    const sent = performance.now();
    socket.write(payload.subarray(0, 1000));
    socket.end(payload.subarray(1000));
    await within(ended, 5_000, "the end of stream back through the relay");
    const elapsed = performance.now() - sent;

    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    // A lower bound only: the round trip holds each chunk once each way.
    // Timers may fire up to a millisecond early by the performance clock.
    expect(elapsed).toBeGreaterThanOrEqual(2 * delayMs - 2);
  });
});
