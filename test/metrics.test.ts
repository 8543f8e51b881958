import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { Controller, ErrorCode, generateKeyPair } from "../runtime/index.js";
import { crashHandlerForTest } from "../runtime/internal.js";
import { FaultRelay } from "./fault-relay.js";
import { controllerFor, startGateway, tempDir, within } from "./helpers.js";

/** One sample of a Prometheus text exposition: the line with this name whose labels include `labels`; 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = new Map([...(match[2] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(match[3]);
  }
  return 0;
}

async function scrape(url: string): Promise<string> {
  const res = await within(fetch(url), 5_000, "metrics scrape");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/plain");
  return res.text();
}

describe("metrics", () => {
  it("off by default: no endpoint, nothing observed", async () => {
    const gw = await startGateway();
    expect(gw.metricsUrl).toBeUndefined();
    expect(gw.metrics).toBeUndefined();
  });

  it("a workload moves each counter by the right amount: calls by subroutine and code, latency, streams, files, sessions, restarts", async () => {
    const root = await tempDir();
    await mkdir(join(root, "logs"));
    await writeFile(join(root, "logs", "a.log"), Buffer.alloc(1000, 1));
    await writeFile(join(root, "logs", "b.log"), Buffer.alloc(3000, 2));
    const gw = await startGateway({ metrics: true, maxPoolSize: 3, fileRoots: [root], downloadDir: join(root, "up"), testHooks: {} });
    gw.addSubroutine("echo", (x: unknown) => x);
    gw.addSubroutine("fail", () => {
      throw new Error("no");
    });
    gw.addSubroutine("later", async (x: unknown) => x);
    gw.addSubroutine("bytes", function* (n: number) {
      for (let i = 0; i < n; i++) yield [i, new Uint8Array(100)];
    });
    expect(gw.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const url = gw.metricsUrl!;
    const before = await scrape(url);
    expect(sample(before, "swarmnet_pool_limit")).toBe(3);
    expect(sample(before, "nodejs_eventloop_lag_seconds")).toBeGreaterThanOrEqual(0);
    expect(before).toContain("nodejs_eventloop_lag_seconds");

    const controller = controllerFor(gw, { downloadDir: await tempDir() });
    const client = await controller.getClient();
    for (let i = 0; i < 5; i++) await client.getSubroutineBatch("echo", [i]);
    for (let i = 0; i < 2; i++) await client.getSubroutineBatch("later", [i]);
    await expect(client.getSubroutineBatch("fail", [])).rejects.toMatchObject({ code: ErrorCode.REMOTE });
    await expect(client.getSubroutineBatch("fail", [])).rejects.toMatchObject({ code: ErrorCode.REMOTE });
    await expect(client.getSubroutineBatch("no-such-thing", [])).rejects.toMatchObject({ code: ErrorCode.SUBROUTINE_NOT_FOUND });
    let items = 0;
    for await (const _ of client.stream("bytes", [10])) items++;
    expect(items).toBe(10);
    const downloaded = await client.getFilesFromGateway({ folder: "logs" });
    expect(downloaded).toHaveLength(2);
    const local = join(await tempDir(), "up.bin");
    await writeFile(local, Buffer.alloc(2500, 3));
    await expect(client.sendFilesToGateway({ dirname: "in", files: [local] })).resolves.toBe(1);
    const second = await controller.getClient();
    expect(crashHandlerForTest(gw, second.handlerId!)).toBe(true);
    await client.ping("after");

    const during = await scrape(url);
    expect(sample(during, "swarmnet_pool_size")).toBe(2);
    await client.closeHandler();
    const after = await scrape(url);
    const moved = (name: string, labels: Record<string, string> = {}): number => sample(after, name, labels) - sample(before, name, labels);

    expect(moved("swarmnet_calls_total", { subroutine: "echo", kind: "get", code: "OK" })).toBe(5);
    expect(moved("swarmnet_calls_total", { subroutine: "later", kind: "get", code: "OK" })).toBe(2);
    expect(moved("swarmnet_calls_total", { subroutine: "fail", kind: "get", code: ErrorCode.REMOTE })).toBe(2);
    // A name nobody registered is not a label of its own: a client cannot grow the series.
    expect(moved("swarmnet_calls_total", { subroutine: "(unknown)", code: ErrorCode.SUBROUTINE_NOT_FOUND })).toBe(1);
    expect(after).not.toContain("no-such-thing");
    expect(moved("swarmnet_calls_total", { subroutine: "bytes", kind: "stream", code: "OK" })).toBe(1);
    expect(moved("swarmnet_call_duration_seconds_count", { subroutine: "echo", kind: "get" })).toBe(5);
    expect(moved("swarmnet_call_duration_seconds_bucket", { subroutine: "echo", kind: "get", le: "+Inf" })).toBe(5);
    expect(moved("swarmnet_stream_items_total")).toBe(10);
    expect(moved("swarmnet_stream_bytes_total")).toBe(1000);
    expect(moved("swarmnet_file_bytes_total", { direction: "download" })).toBe(4000);
    expect(moved("swarmnet_files_total", { direction: "download" })).toBe(2);
    expect(moved("swarmnet_calls_total", { kind: "download", code: "OK" })).toBe(1);
    expect(moved("swarmnet_file_bytes_total", { direction: "upload" })).toBe(2500);
    expect(moved("swarmnet_files_total", { direction: "upload" })).toBe(1);
    expect(moved("swarmnet_calls_total", { kind: "upload", code: "OK" })).toBe(1);
    expect(moved("swarmnet_sessions_opened_total")).toBe(2);
    expect(moved("swarmnet_sessions_ended_total", { reason: "closed" })).toBe(1);
    expect(moved("swarmnet_handler_restarts_total")).toBe(1);
    expect(sample(after, "swarmnet_pool_size")).toBe(1);

    // The link layer's counters: an API for the reliable-delivery code to call.
    gw.metrics!.linkDrop();
    gw.metrics!.replay(3);
    const last = await scrape(url);
    expect(sample(last, "swarmnet_link_drops_total") - sample(after, "swarmnet_link_drops_total")).toBe(1);
    expect(sample(last, "swarmnet_replayed_messages_total") - sample(after, "swarmnet_replayed_messages_total")).toBe(3);
  });

  it("a client whose link drops and resumes is counted as a link drop by the delivery layer", async () => {
    const gw = await startGateway({ metrics: { port: 0, defaultMetrics: false } });
    const relay = new FaultRelay({ targetPort: gw.port });
    await relay.start();
    onTestFinished(() => relay.close());
    const controller = new Controller({ gateways: [relay.endpoint], timeoutMs: 20_000 });
    onTestFinished(() => controller.close());
    const client = await controller.getClient();
    gw.addSubroutine("echo", (x: number) => x);
    await expect(client.getSubroutineBatch("echo", [1])).resolves.toBe(1);
    const before = await scrape(gw.metricsUrl!);
    relay.reset();
    // Answered only after the client resumed its session through the new connection.
    await expect(client.getSubroutineBatch("echo", [2])).resolves.toBe(2);
    const after = await scrape(gw.metricsUrl!);
    expect(sample(after, "swarmnet_link_drops_total") - sample(before, "swarmnet_link_drops_total")).toBeGreaterThanOrEqual(1);
    expect(sample(after, "swarmnet_replayed_messages_total")).toBeGreaterThanOrEqual(sample(before, "swarmnet_replayed_messages_total"));
  });

  it("CURVE: an unauthorized key is counted as an auth failure; a full pool as a refusal", async () => {
    const server = generateKeyPair();
    const alice = generateKeyPair();
    const mallory = generateKeyPair();
    const gw = await startGateway({
      metrics: { port: 0, defaultMetrics: false },
      maxPoolSize: 1,
      curve: { ...server, authorizedKeys: [alice.publicKey] },
    });
    const before = await scrape(gw.metricsUrl!);
    expect(before).not.toContain("nodejs_eventloop_lag_seconds");
    const good = new Controller({ port: gw.port, curve: { ...alice, serverPublicKey: server.publicKey }, connectTimeoutMs: 3_000 });
    const bad = new Controller({ port: gw.port, curve: { ...mallory, serverPublicKey: server.publicKey }, connectTimeoutMs: 500 });
    onTestFinished(() => Promise.all([good.close(), bad.close()]).then(() => undefined));
    await good.getClient();
    await expect(good.getClient()).rejects.toMatchObject({ code: ErrorCode.POOL_FULL });
    await expect(bad.getClient()).rejects.toMatchObject({ code: ErrorCode.HANDSHAKE_FAILED });
    const after = await scrape(gw.metricsUrl!);
    expect(sample(after, "swarmnet_auth_failures_total") - sample(before, "swarmnet_auth_failures_total")).toBeGreaterThanOrEqual(1);
    expect(
      sample(after, "swarmnet_sessions_refused_total", { code: ErrorCode.POOL_FULL }) -
        sample(before, "swarmnet_sessions_refused_total", { code: ErrorCode.POOL_FULL }),
    ).toBe(1);
  });

  it("a metrics port already taken fails start() with the port in the message and leaves nothing bound", async () => {
    const first = await startGateway({ metrics: true });
    const port = Number(new URL(first.metricsUrl!).port);
    const { Gateway } = await import("../runtime/index.js");
    const gw = new Gateway({ port: 0, metrics: { port } });
    await expect(gw.start()).rejects.toThrow(`127.0.0.1:${port}`);
    await within(gw.closed, 5_000, "gateway closed after a failed start");
    expect(() => new Gateway({ port: 0, metrics: { port: 70_000 } })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
  });
});
