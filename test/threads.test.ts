/**
 * Subroutines on worker threads (`gateway.addSubroutines(module, { threads })`):
 * every call kind over real sockets, crashes and deadlines inside a worker,
 * abort of a worker-side stream, the credit window across the thread hop, and
 * the CLI flag.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SubroutineThreadPool } from "../actors/thread-pool.js";
import { renderInspection } from "../cli/inspect.js";
import { cli, startCliGateway } from "./cli-helpers.js";
import { kill, startProcess } from "./processes.js";
import { controllerFor, startGateway, tempDir, within } from "./helpers.js";

const SUBS = fileURLToPath(new URL("./fixtures/thread-subroutines.ts", import.meta.url));
const CALLER = fileURLToPath(new URL("./fixtures/thread-caller.ts", import.meta.url));

/** Resolves once `predicate` holds on the gateway's snapshot (checked every turn of the loop), bounded. */
async function untilSnapshot(
  gateway: Awaited<ReturnType<typeof startGateway>>,
  predicate: (s: ReturnType<typeof gateway.snapshot>) => boolean,
  what: string,
): Promise<void> {
  await within(
    (async () => {
      for (let i = 0; i < 200_000; i++) {
        if (predicate(gateway.snapshot())) return;
        await new Promise((r) => setImmediate(r));
      }
      throw new Error(`never: ${what}`);
    })(),
    15_000,
    what,
  );
}

async function threadedGateway(threads: number, options: Parameters<typeof startGateway>[0] = {}) {
  const gateway = await startGateway(options);
  const names = await gateway.addSubroutines(SUBS, { threads });
  return { gateway, names };
}

// Some tests wait for a worker to be terminated and a new one started: bounded generously for a loaded machine.
describe("worker-thread subroutines", { timeout: 90_000 }, () => {
  it("addSubroutines - registers every exported function; batch get runs off the main thread with bytes back", async () => {
    const { gateway, names } = await threadedGateway(2);
    expect(names.sort()).toEqual([
      "burn",
      "counter",
      "crash",
      "crashingStream",
      "echoBytes",
      "endless",
      "fails",
      "idle",
      "leavesAThrow",
      "poisonedMessage",
      "sleep",
      "spin",
      "stuck",
      "sum",
      "throwsAfter",
      "throwsBigInt",
      "unclonable",
      "unclonableItem",
    ]);
    const client = await controllerFor(gateway).getClient();
    const burned = (await client.getSubroutineBatch("burn", [2])) as { threadId: number; ms: number };
    expect(burned.threadId).toBeGreaterThan(0); // 0 is the main thread
    expect(burned.ms).toBe(2);
    const bytes = (await client.getSubroutineBatch("echoBytes", ["hi"])) as Uint8Array;
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(new TextDecoder().decode(bytes)).toMatch(/^hi from thread [1-9]\d*$/);
  });

  it("batch send - the buffer reaches kwargs.buffer in the worker and the integer comes back", async () => {
    const { gateway } = await threadedGateway(1);
    const client = await controllerFor(gateway).getClient();
    const buffer = new Uint8Array(100_000).map((_, i) => i % 251);
    let expected = 0;
    for (const b of buffer) expected += b;
    await expect(client.sendSubroutineBatch("sum", buffer, ["label"])).resolves.toBe(expected);
  });

  it("batch send - a buffer that owns its memory is moved to the worker, not copied", async () => {
    const pool = await SubroutineThreadPool.open(SUBS, { threads: 1, only: ["sum"] });
    try {
      const entry = pool.subroutines[0]!;
      const buffer = new Uint8Array([1, 2, 3, 4]);
      const result = await pool.invoker(entry).invoke(["label"], { buffer }, undefined);
      expect(result).toBe(10);
      // Transferred: the gateway thread's view is detached.
      expect(buffer.byteLength).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it("stream - 20,000 items from a worker-side generator arrive once each, in order", async () => {
    const { gateway } = await threadedGateway(1);
    const client = await controllerFor(gateway).getClient();
    let next = 0;
    for await (const [ident, buffer] of client.stream("counter", [20_000], {}, { window: 512 })) {
      expect(ident).toBe(next);
      expect(new DataView((buffer as Uint8Array).buffer, (buffer as Uint8Array).byteOffset).getUint32(0)).toBe(next);
      next++;
    }
    expect(next).toBe(20_000);
  });

  it("stream - a worker-side generator is never pulled past the client's window", async () => {
    const { gateway } = await threadedGateway(1);
    const dir = await tempDir();
    const marker = join(dir, "marker");
    const client = await controllerFor(gateway).getClient();
    const window = 16;
    const iterator = client.stream("endless", [marker], {}, { window })[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    // The job holds a full window once the consumer stalls; the worker must not have pulled more.
    const handler = () => gateway.snapshot().handlers[0];
    await within(
      (async () => {
        for (let i = 0; i < 10_000; i++) {
          const progress = handler()?.progress as { outstanding?: number } | undefined;
          if (progress?.outstanding === window) return;
          await new Promise((r) => setImmediate(r));
        }
        throw new Error("the stream never filled its window");
      })(),
      10_000,
      "a full window",
    );
    const progress = handler()!.progress as { itemsSent: number; maxOutstanding: number };
    expect(progress.maxOutstanding).toBeLessThanOrEqual(window);
    expect(progress.itemsSent).toBe(window);
    // The worker thread itself produced no more than the window either.
    expect(Number(await readFile(`${marker}.pulled`, "utf8"))).toBe(window);
    await iterator.return?.();
    // The generator's finally ran in the worker once the abort reached it.
    await client.ping("after");
    expect(await readFile(marker, "utf8")).toMatch(/^finally [1-9]\d*\n$/);
  });

  it("stream - break aborts the worker-side generator: its finally runs in the worker and the handler serves the next call", async () => {
    const { gateway } = await threadedGateway(1);
    const dir = await tempDir();
    const marker = join(dir, "marker");
    await writeFile(marker, "");
    const client = await controllerFor(gateway).getClient();
    let seen = 0;
    for await (const [ident] of client.stream("endless", [marker])) {
      if (ident !== seen) throw new Error(`item ${ident} out of order`);
      if (++seen === 200) break;
    }
    await expect(client.getSubroutineBatch("burn", [1])).resolves.toMatchObject({ ms: 1 });
    expect(await readFile(marker, "utf8")).toMatch(/^finally [1-9]\d*\n$/);
  });

  it("errors - a subroutine's own throw in a worker is a RemoteError with its message; a non-generator as a stream is refused", async () => {
    const { gateway } = await threadedGateway(1);
    const client = await controllerFor(gateway).getClient();
    await expect(client.getSubroutineBatch("fails", [])).rejects.toMatchObject({
      code: "SWARMNET_REMOTE_ERROR",
      message: expect.stringContaining("disk full"),
    });
    await expect(client.getSubroutineBatch("counter", [3])).rejects.toMatchObject({ code: "SWARMNET_BAD_RESULT" });
    await expect(
      client.getSubroutineStream(
        "burn",
        () => true,
        () => undefined,
        [1],
      ),
    ).rejects.toMatchObject({ code: "SWARMNET_NOT_A_GENERATOR" });
    await expect(client.getSubroutineBatch("burn", [1])).resolves.toMatchObject({ ms: 1 });
    // A thrown value whose reading throws is still the caller's RemoteError, not a crashed worker (twice: no restart budget spent).
    for (let round = 0; round < 2; round++) {
      await expect(client.getSubroutineBatch("poisonedMessage", [])).rejects.toMatchObject({ code: "SWARMNET_REMOTE_ERROR" });
    }
    await expect(client.getSubroutineBatch("throwsBigInt", [])).rejects.toMatchObject({
      code: "SWARMNET_REMOTE_ERROR",
      message: expect.stringContaining("10n"),
    });
    expect(gateway.snapshot().handlers.every((h) => h.restarts === 0)).toBe(true);
  });

  it("crash - a worker that dies is a handler crash: HandlerCrashedError, restart budget applies, other clients never notice", async () => {
    const { gateway } = await threadedGateway(2, { maxRestarts: 1, restartWindowMs: 60_000 });
    const controller = controllerFor(gateway);
    const [victim, bystander] = await Promise.all([controller.getClient(), controller.getClient()]);
    const calm = bystander.getSubroutineBatch("burn", [50]);
    await expect(victim.getSubroutineBatch("crash", [])).rejects.toMatchObject({ code: "SWARMNET_HANDLER_CRASHED" });
    await expect(calm).resolves.toMatchObject({ ms: 50 });
    // Restarted once: the same client is served again, by a new worker.
    await expect(victim.getSubroutineBatch("burn", [1])).resolves.toMatchObject({ ms: 1 });
    expect(gateway.snapshot().supervisor.stats.restarts).toBe(1);
    // A stream whose worker dies mid-way fails the same way, after the items it sent.
    const items: number[] = [];
    const second = victim.getSubroutineStream(
      "crashingStream",
      (_name, ident) => void items.push(ident),
      () => undefined,
      [],
    );
    await expect(second).rejects.toMatchObject({ code: "SWARMNET_HANDLER_CRASHED" });
    // The budget (1 restart) is spent: the session ends, the bystander still works.
    await expect(victim.ping("x")).rejects.toMatchObject({ code: expect.stringMatching(/SWARMNET_(SESSION_ENDED|CLOSED)/) });
    await expect(bystander.getSubroutineBatch("burn", [1])).resolves.toMatchObject({ ms: 1 });
    expect(gateway.snapshot().supervisor.stats.crashedOut).toBe(1);
  });

  it("deadline - a call cancelled by its deadline stops its worker; the thread is free for the next call", async () => {
    // One thread: if the spinning worker went on, the next call would queue behind 60 s of work.
    const { gateway } = await threadedGateway(1);
    const controller = controllerFor(gateway);
    const [a, b] = await Promise.all([controller.getClient(), controller.getClient()]);
    await expect(a.getSubroutineBatch("spin", [60_000], {}, { timeoutMs: 300 })).rejects.toMatchObject({ code: "SWARMNET_TIMEOUT" });
    await expect(
      within(b.getSubroutineBatch("burn", [1], {}, { timeoutMs: 40_000 }), 45_000, "a call after the cancelled one"),
    ).resolves.toMatchObject({ ms: 1 });
    await expect(a.getSubroutineBatch("burn", [1])).resolves.toMatchObject({ ms: 1 });
    expect(gateway.snapshot().threads[0]!.running).toBe(0);
  });

  it("inspect - the snapshot shows which handler runs on a thread and how busy each worker is", async () => {
    const { gateway } = await threadedGateway(2);
    const client = await controllerFor(gateway).getClient();
    const call = client.getSubroutineBatch("spin", [400]);
    await within(
      (async () => {
        for (let i = 0; i < 100_000; i++) {
          if (gateway.snapshot().handlers[0]?.state === "busy.batchGet") return;
          await new Promise((r) => setImmediate(r));
        }
        throw new Error("the handler never went busy");
      })(),
      10_000,
      "busy handler",
    );
    const snapshot = gateway.snapshot();
    expect(snapshot.handlers[0]!.request).toMatchObject({ name: "spin", thread: expect.stringMatching(/thread-subroutines\.ts$/) });
    expect(snapshot.threads).toHaveLength(1);
    expect(snapshot.threads[0]).toMatchObject({ threads: 2, running: 1 });
    expect(snapshot.threads[0]!.workers).toHaveLength(2);
    for (const worker of snapshot.threads[0]!.workers) {
      expect(worker.utilization).toBeGreaterThanOrEqual(0);
      expect(worker.utilization).toBeLessThanOrEqual(1);
    }
    // `swarmnet inspect` draws the same: the handler's call is marked, the pool has its own line.
    const text = renderInspection(snapshot);
    expect(text).toMatch(/#\d+ batchGet spin \[thread\]/);
    expect(text).toMatch(/threads: thread-subroutines\.ts {2}2 threads {2}running 1 {2}queued 0 {2}busy \d+% \d+%/);
    await call;
  });

  it("bad input - a module that cannot load or exports no function, a bad thread count, a bad `only`: InvalidArgumentError", async () => {
    const gateway = await startGateway();
    const dir = await tempDir();
    const empty = join(dir, "empty.mjs");
    await writeFile(empty, "export const answer = 42;\n");
    await expect(gateway.addSubroutines("/no/such/module.js", { threads: 1 })).rejects.toMatchObject({ code: "SWARMNET_INVALID_ARGUMENT" });
    await expect(gateway.addSubroutines(empty, { threads: 1 })).rejects.toMatchObject({ code: "SWARMNET_INVALID_ARGUMENT" });
    await expect(gateway.addSubroutines(SUBS, { threads: 0 })).rejects.toMatchObject({ code: "SWARMNET_INVALID_ARGUMENT" });
    await expect(gateway.addSubroutines(SUBS, { threads: 1, only: ["nope"] })).rejects.toMatchObject({ code: "SWARMNET_INVALID_ARGUMENT" });
    await expect(gateway.addSubroutines(SUBS, { threads: 1, only: "burn" as unknown as string[] })).rejects.toMatchObject({
      code: "SWARMNET_INVALID_ARGUMENT",
    });
    await expect(gateway.addSubroutines(SUBS, { threads: 1, only: [] })).rejects.toMatchObject({ code: "SWARMNET_INVALID_ARGUMENT" });
    expect(gateway.snapshot().threads).toHaveLength(0);
  });

  it("pools - a module added again replaces the old pool; a pool left with no names is closed; a stopped gateway refuses", async () => {
    const gateway = await startGateway();
    await gateway.addSubroutines(SUBS, { threads: 1, only: ["burn", "sleep"] });
    await gateway.addSubroutines(SUBS, { threads: 1, only: ["burn", "sleep"] });
    expect(gateway.snapshot().threads).toHaveLength(1);
    gateway.addSubroutine("burn", () => "on the loop");
    expect(gateway.snapshot().threads).toHaveLength(1);
    gateway.removeSubroutine("sleep");
    expect(gateway.snapshot().threads).toHaveLength(0);
    const client = await controllerFor(gateway).getClient();
    await expect(client.getSubroutineBatch("burn", [])).resolves.toBe("on the loop");
    await gateway.stop();
    await expect(gateway.addSubroutines(SUBS, { threads: 1 })).rejects.toMatchObject({ code: "SWARMNET_CLOSED" });
  });

  it("stuck stream - a generator that never yields gives its thread back when the caller's deadline passes or the client closes", async () => {
    const { gateway } = await threadedGateway(1);
    const controller = controllerFor(gateway);
    const [a, b] = await Promise.all([controller.getClient(), controller.getClient()]);
    const first = a.stream("stuck", [], {}, { timeoutMs: 300 })[Symbol.asyncIterator]().next();
    await expect(first).rejects.toMatchObject({ code: "SWARMNET_TIMEOUT" });
    // One thread: the next call only runs once the stuck worker was terminated and replaced.
    // The stuck worker gets 2 s to return, then a new one starts: the bound is for a loaded machine, and the
    // test fails all the same if the thread were never given back (the generator spins forever).
    const slow = { timeoutMs: 40_000 };
    await expect(within(b.getSubroutineBatch("burn", [1], {}, slow), 45_000, "a call after the stuck stream")).resolves.toMatchObject({
      ms: 1,
    });
    const c = await controller.getClient();
    const idle = c.stream("idle", [])[Symbol.asyncIterator]();
    void idle.next().catch(() => undefined);
    await untilSnapshot(gateway, (s) => s.handlers.some((h) => h.request?.name === "idle"), "the idle stream running");
    await c.closeHandler();
    await expect(within(b.getSubroutineBatch("burn", [1], {}, slow), 45_000, "a call after the closed stream")).resolves.toMatchObject({
      ms: 1,
    });
    await untilSnapshot(gateway, (s) => s.threads[0]!.running === 0, "no task running");
  });

  it("lease - a client killed during a call on a thread: when its session expires the worker is stopped", async () => {
    const { gateway } = await threadedGateway(1, { livenessMs: 1_000 });
    const { child } = await startProcess(CALLER, [gateway.endpoint, "spin", 600_000]);
    await untilSnapshot(gateway, (s) => s.handlers.some((h) => h.request?.name === "spin"), "the spin call running");
    await kill(child);
    const client = await controllerFor(gateway).getClient();
    // Lease, termination and a new worker: bounded for a loaded machine; the killed call would spin 10 minutes.
    await expect(
      within(client.getSubroutineBatch("burn", [1], {}, { timeoutMs: 40_000 }), 45_000, "a call after the expired one"),
    ).resolves.toMatchObject({ ms: 1 });
    expect(gateway.snapshot().supervisor.stats.expired).toBe(1);
  });

  it("errors - items yielded before a throw are delivered, then the RemoteError; unclonable results are SWARMNET_BAD_RESULT", async () => {
    const { gateway } = await threadedGateway(1);
    const client = await controllerFor(gateway).getClient();
    const items: number[] = [];
    await expect(
      client.getSubroutineStream(
        "throwsAfter",
        (_n, ident) => void items.push(ident),
        () => undefined,
        [5],
      ),
    ).rejects.toMatchObject({
      code: "SWARMNET_REMOTE_ERROR",
      message: expect.stringContaining("failed after 5"),
    });
    expect(items).toEqual([0, 1, 2, 3, 4]);
    await expect(client.getSubroutineBatch("unclonable", [])).rejects.toMatchObject({ code: "SWARMNET_BAD_RESULT" });
    const streamed: number[] = [];
    await expect(
      client.getSubroutineStream(
        "unclonableItem",
        (_n, ident) => void streamed.push(ident),
        () => undefined,
        [],
      ),
    ).rejects.toMatchObject({
      code: "SWARMNET_BAD_RESULT",
    });
    expect(streamed).toEqual([0, 1]);
    await expect(client.getSubroutineBatch("burn", [1])).resolves.toMatchObject({ ms: 1 });
  });

  it("stray errors - a throw a finished call left behind replaces its worker without failing the next call", async () => {
    const { gateway } = await threadedGateway(1, { maxRestarts: 0 });
    const controller = controllerFor(gateway);
    const [attacker, victim] = await Promise.all([controller.getClient(), controller.getClient()]);
    await expect(attacker.getSubroutineBatch("leavesAThrow", [100])).resolves.toBe("returned");
    // The late throw happens while the victim's call sleeps on the same (only) thread.
    await expect(victim.getSubroutineBatch("sleep", [600])).resolves.toBe(600);
    await expect(victim.getSubroutineBatch("burn", [1])).resolves.toMatchObject({ ms: 1 });
    expect(gateway.snapshot().supervisor.stats.restarts).toBe(0);
  });

  it("queue - more calls than threads: one runs, the others wait their turn in order", async () => {
    const { gateway } = await threadedGateway(1);
    const controller = controllerFor(gateway);
    const clients = await Promise.all([controller.getClient(), controller.getClient(), controller.getClient()]);
    const order: number[] = [];
    const calls = clients.map((c, i) => c.getSubroutineBatch("sleep", [150]).then(() => void order.push(i)));
    await untilSnapshot(gateway, (s) => s.threads[0]!.queued === 2, "two calls queued");
    expect(gateway.snapshot().threads[0]).toMatchObject({ running: 1, queued: 2 });
    await Promise.all(calls);
    expect(order).toHaveLength(3);
  });

  it("CLI - swarmnet gateway --subroutines MODULE --threads N serves the module from worker threads", async () => {
    const dir = await tempDir();
    const subs = join(dir, "subs.js");
    await writeFile(
      subs,
      'import { threadId } from "node:worker_threads";\n' +
        "export const where = () => threadId;\n" +
        "export function* upto(n) { for (let i = 0; i < n; i++) yield [i, i]; }\n",
    );
    // Started from another folder than the checkout: the worker must still find tsx.
    const { gateway, endpoint } = await startCliGateway(["--subroutines", subs, "--threads", "2"], { cwd: dir });
    expect(gateway.stdout).toMatch(/2 subroutines: (where, upto|upto, where) on 2 threads/);
    const where = await cli(["call", "where", "-g", endpoint]);
    expect(where.code).toBe(0);
    expect(Number(where.stdout.trim())).toBeGreaterThan(0);
    expect((await cli(["stream", "upto", "3", "-g", endpoint])).stdout).toBe("0\t0\n1\t1\n2\t2\n");
    const bad = await cli(["gateway", "--port", "0", "--threads", "2"]);
    expect(bad.code).toBe(2);
  });
});
