import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { Controller, ErrorCode, reorderByIdent, type StreamItem } from "../runtime/index.js";
import { controllerFor, startGateway, within } from "./helpers.js";

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

async function streamingGateway(options = {}) {
  const gw = await startGateway(options);
  const state = { finallyRan: 0, pulled: 0 };
  gw.addSubroutine("count", function* (n: number) {
    for (let i = 0; i < n; i++) yield [i, bytes(`item ${i}`)];
  });
  gw.addSubroutine("acount", async function* (n: number, kwargs: { prefix?: string }) {
    for (let i = 0; i < n; i++) {
      await Promise.resolve();
      yield [i, { text: `${kwargs.prefix ?? ""}${i}`, i }];
    }
  });
  gw.addSubroutine("endless", async function* () {
    try {
      for (let i = 0; ; i++) {
        state.pulled++;
        yield [i, bytes("x".repeat(64))];
      }
    } finally {
      state.finallyRan++;
    }
  });
  gw.addSubroutine("minus", function* () {
    yield [0, bytes("a")];
    yield [1, bytes("b")];
    yield [-1, bytes("never delivered")];
    yield [2, bytes("never pulled")];
  });
  gw.addSubroutine("nullbuf", function* () {
    try {
      yield [0, bytes("a")];
      yield [1, null];
      yield [2, bytes("never pulled")];
    } finally {
      state.finallyRan++;
    }
  });
  gw.addSubroutine("throws", function* () {
    yield [0, bytes("a")];
    yield [1, bytes("b")];
    throw new TypeError("sensor unplugged");
  });
  gw.addSubroutine("plain", () => 42);
  gw.addSubroutine("iterable", () => [[0, "not a generator but an array"]].values());
  gw.addSubroutine("every", async function* (start: number, step: number, count: number) {
    for (let i = 0; i < count; i++) yield [start + i * step, bytes(String(start + i * step))];
  });
  gw.addSubroutine("slowgen", async function* () {
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 20));
      yield [i, bytes(String(i))];
    }
  });
  return { gw, state };
}

describe("streaming from generator subroutines", () => {
  it("callback API - every item once, in order, then eos; sync generator with bytes", async () => {
    const { gw } = await streamingGateway();
    const client = await controllerFor(gw).getClient();
    const seen: string[] = [];
    const eos: string[] = [];
    await client.getSubroutineStream(
      "count",
      (name, ident, buffer) => {
        expect(name).toBe("count");
        expect(buffer).toBeInstanceOf(Uint8Array);
        seen.push(`${ident}:${text(buffer)}`);
      },
      (name) => eos.push(name),
      [1000],
    );
    expect(seen).toHaveLength(1000);
    expect(seen[0]).toBe("0:item 0");
    expect(seen[999]).toBe("999:item 999");
    expect(eos).toEqual(["count"]);
  });

  it("async generator with CBOR values and kwargs", async () => {
    const { gw } = await streamingGateway();
    const client = await controllerFor(gw).getClient();
    const items: StreamItem<{ text: string; i: number }>[] = [];
    for await (const item of client.stream<{ text: string; i: number }>("acount", [5], { prefix: "s" })) items.push(item);
    expect(items).toEqual([0, 1, 2, 3, 4].map((i) => [i, { text: `s${i}`, i }]));
  });

  it("end rules - a negative ident or a null buffer ends the stream and is not delivered", async () => {
    const { gw, state } = await streamingGateway();
    const client = await controllerFor(gw).getClient();
    const a: number[] = [];
    await client.getSubroutineStream("minus", (_, ident) => void a.push(ident));
    expect(a).toEqual([0, 1]);
    const b: number[] = [];
    let eos = 0;
    await client.getSubroutineStream(
      "nullbuf",
      (_, ident) => void b.push(ident),
      () => void eos++,
    );
    expect(b).toEqual([0]);
    expect(eos).toBe(1);
    expect(state.finallyRan).toBe(1);
  });

  it("callback returning false aborts: the generator's finally runs, no eos, the handler is idle and the next stream sees no strays", async () => {
    const { gw, state } = await streamingGateway();
    const client = await controllerFor(gw).getClient();
    let got = 0;
    let eos = 0;
    await client.getSubroutineStream(
      "endless",
      () => ++got < 10,
      () => void eos++,
    );
    expect(got).toBe(10);
    expect(eos).toBe(0);
    expect(state.finallyRan).toBe(1);
    expect(gw.snapshot().handlers[0]).toMatchObject({ state: "idle", request: undefined });
    // A promise of false aborts too.
    let got2 = 0;
    await client.getSubroutineStream("endless", async () => ++got2 < 3);
    expect(state.finallyRan).toBe(2);
    // The next call on the same client gets only its own items.
    const next: string[] = [];
    await client.getSubroutineStream("count", (_, ident, b) => void next.push(`${ident}:${text(b)}`), undefined, [3]);
    expect(next).toEqual(["0:item 0", "1:item 1", "2:item 2"]);
    await expect(client.ping("after")).resolves.toBe("after");
  });

  it("stream() - break, return() and an AbortSignal each abort, and the generator's finally runs", async () => {
    const { gw, state } = await streamingGateway();
    const client = await controllerFor(gw).getClient();
    let n = 0;
    for await (const [ident] of client.stream("endless")) {
      if (ident >= 4) break;
      n++;
    }
    expect(n).toBe(4);
    expect(state.finallyRan).toBe(1);

    const it = client.stream("endless")[Symbol.asyncIterator]();
    await it.next();
    await it.return?.();
    expect(state.finallyRan).toBe(2);

    const controller = new AbortController();
    const consumed: number[] = [];
    const consume = (async () => {
      for await (const [ident] of client.stream("endless", [], {}, { signal: controller.signal })) {
        consumed.push(ident);
        if (ident === 20) controller.abort(new Error("enough"));
      }
    })();
    await expect(within(consume, 5_000, "aborted stream")).rejects.toThrow("enough");
    expect(consumed.at(-1)).toBe(20);
    await expect(client.ping("idle again")).resolves.toBe("idle again");
    expect(state.finallyRan).toBe(3);
  });

  it("a stream has one consumer: a second iterator is an error", async () => {
    const { gw } = await streamingGateway();
    const client = await controllerFor(gw).getClient();
    const stream = client.stream("count", [2]);
    const first = stream[Symbol.asyncIterator]();
    expect(() => stream[Symbol.asyncIterator]()).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    while (!(await first.next()).done);
  });

  it("errors - a generator that throws rejects with RemoteError after its items; unknown name; not a generator", async () => {
    const { gw } = await streamingGateway();
    const client = await controllerFor(gw).getClient();
    const before: number[] = [];
    await expect(client.getSubroutineStream("throws", (_, ident) => void before.push(ident))).rejects.toMatchObject({
      code: ErrorCode.REMOTE,
      message: "sensor unplugged",
      remoteName: "TypeError",
    });
    expect(before).toEqual([0, 1]);
    await expect(client.getSubroutineStream("nope", () => true)).rejects.toMatchObject({ code: ErrorCode.SUBROUTINE_NOT_FOUND });
    await expect(client.getSubroutineStream("plain", () => true)).rejects.toMatchObject({
      code: ErrorCode.NOT_A_GENERATOR,
      name: "NotAGeneratorError",
    });
    // A plain function that returns an iterator streams too.
    const items: unknown[] = [];
    await client.getSubroutineStream("iterable", (_, ident, v) => void items.push([ident, v]));
    expect(items).toEqual([[0, "not a generator but an array"]]);
    // And a generator called as a batch is a typed error.
    await expect(client.getSubroutineBatch("count", [1])).rejects.toMatchObject({ code: ErrorCode.BAD_RESULT });
    await expect(client.ping()).resolves.toBe("ping");
  });

  it("credit flow control - an endless generator never runs more than the window ahead of a slow consumer", async () => {
    const { gw, state } = await streamingGateway();
    const client = await controllerFor(gw).getClient();
    const window = 64;
    let consumed = 0;
    let worst = 0;
    await client.getSubroutineStream(
      "endless",
      async () => {
        consumed++;
        worst = Math.max(worst, state.pulled - consumed);
        expect(state.pulled - consumed).toBeLessThanOrEqual(window);
        const progress = gw.snapshot().handlers[0]?.progress as { outstanding: number } | undefined;
        if (progress) expect(progress.outstanding).toBeLessThanOrEqual(window);
        if (consumed % 50 === 0) await new Promise((r) => setTimeout(r, 1)); // a slow consumer
        return consumed < 3000;
      },
      undefined,
      [],
      {},
      { window },
    );
    expect(consumed).toBe(3000);
    expect(worst).toBeGreaterThan(window / 2); // the window was actually used
    expect(state.finallyRan).toBe(1);
  });

  it("a fast consumer is not slowed by per-item acknowledgements: credits are a small fraction of items", async () => {
    const { gw } = await streamingGateway();
    const client = await controllerFor(gw).getClient();
    const before = gw.counters.received;
    let n = 0;
    await client.getSubroutineStream("count", () => void n++, undefined, [50_000]);
    expect(n).toBe(50_000);
    const messages = gw.counters.received - before;
    expect(messages).toBeLessThan(200); // 50,000 items, one credit per window/4
  });

  it("snapshot - the handler is in busy.streaming with the stream's name and items sent", async () => {
    const { gw } = await streamingGateway();
    const client = await controllerFor(gw).getClient();
    let snap: ReturnType<typeof gw.snapshot> | undefined;
    await client.getSubroutineStream("endless", (_, ident) => {
      if (ident === 100) snap = gw.snapshot();
      return ident < 100;
    });
    expect(snap?.handlers[0]).toMatchObject({
      state: "busy.streaming",
      request: { kind: "stream", name: "endless" },
      progress: { kind: "stream", name: "endless" },
    });
    expect((snap?.handlers[0]?.progress as { itemsSent: number }).itemsSent).toBeGreaterThan(100);
  });

  it("several streams at once over a swarm, merged back into ident order with reorderByIdent", async () => {
    const { gw } = await streamingGateway();
    const swarm = await controllerFor(gw).getSwarm(3);
    // One logical generator served by three handlers: handler k yields idents k, k+3, k+6, ...
    const streams = swarm.clients.map((c, k) => c.stream("every", [k, 3, 100]));
    const merged: number[] = [];
    for await (const [ident, b] of reorderByIdent(streams)) {
      expect(text(b as Uint8Array)).toBe(String(ident));
      merged.push(ident);
    }
    expect(merged).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it("a slow generator's items arrive one by one without waiting for a batch to fill", async () => {
    const { gw } = await streamingGateway();
    const client = await controllerFor(gw).getClient();
    const arrivals: number[] = [];
    const t0 = performance.now();
    await client.getSubroutineStream("slowgen", () => void arrivals.push(performance.now() - t0));
    expect(arrivals).toHaveLength(3);
    // Each item came on its own, about 20 ms apart, not all at the end.
    expect(arrivals[0]!).toBeLessThan(arrivals[2]! - 15);
  });

  it("a client that dies mid-stream - the lease ends the stream, the generator's finally runs, the slot is freed", async () => {
    const { gw, state } = await streamingGateway({ livenessMs: 300 });
    const controller = controllerFor(gw);
    const dying = await controller.getClient();
    const it = dying.stream("endless", [], {}, { window: 8 })[Symbol.asyncIterator]();
    await it.next();
    expect(gw.snapshot().supervisor.poolSize).toBe(1);
    // Kill the client's connection without a goodbye: no credit, no heartbeat from now on.
    dying.actor.getSnapshot().context.transport.close();
    await within(
      new Promise<void>((resolve) => {
        const check = (): void =>
          state.finallyRan === 1 && gw.snapshot().supervisor.poolSize === 0 ? resolve() : void setTimeout(check, 20);
        check();
      }),
      5_000,
      "stream ended by the lease",
    );
    expect(gw.snapshot().supervisor.stats.expired).toBe(1);
  });

  it("a gateway killed mid-stream - the stream fails with a typed error within its idle bound", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/stream-gateway.ts"], { stdio: ["ignore", "pipe", "inherit"] });
    try {
      const [line] = (await within(once(child.stdout, "data"), 20_000, "child gateway")) as [Buffer];
      const port = Number(/PORT (\d+)/.exec(line.toString())?.[1]);
      const controller = new Controller({ port, timeoutMs: 1_000 });
      const client = await controller.getClient();
      let got = 0;
      const consuming = client.getSubroutineStream(
        "forever",
        () => {
          if (++got === 5) child.kill("SIGKILL");
        },
        undefined,
        [],
        {},
        { idleTimeoutMs: 1_000 },
      );
      await expect(within(consuming, 10_000, "stream failure")).rejects.toMatchObject({
        code: expect.stringMatching(/TIMEOUT|CONNECTION/),
      });
      expect(got).toBeGreaterThanOrEqual(5);
      await controller.close();
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("stream window over a long link", () => {
  it("unset, the window grows toward the link's bandwidth-delay product (20 ms round trip); set, it stays; every item arrives once, in order", async () => {
    const { LatencyRelay } = await import("../bench/relay.js");
    const gw = await startGateway();
    gw.addSubroutine("small", function* (n: number) {
      const item = new Uint8Array(16);
      for (let i = 0; i < n; i++) yield [i, item];
    });
    const relay = new LatencyRelay({ targetHost: "127.0.0.1", targetPort: gw.port, delayMs: 10 });
    const port = await relay.start();
    const controller = new Controller({ gateways: [`tcp://127.0.0.1:${port}`], timeoutMs: 20_000 });
    try {
      const client = await controller.getClient();
      const drain = async (options: { window?: number }): Promise<number> => {
        const reader = client.stream("small", [60_000], {}, options)[Symbol.asyncIterator]() as AsyncIterator<StreamItem> & {
          window: number;
        };
        let next = 0;
        for (;;) {
          const r = await reader.next();
          if (r.done) break;
          expect(r.value[0]).toBe(next++);
        }
        expect(next).toBe(60_000);
        return reader.window;
      };
      // Growing from 2,048 each time half a window arrived while the consumer waited on the link.
      expect(await within(drain({}), 60_000, "the self-tuning stream")).toBeGreaterThanOrEqual(8_192);
      expect(await within(drain({ window: 2048 }), 60_000, "the fixed-window stream")).toBe(2048);
    } finally {
      await controller.close();
      await relay.stop();
    }
  });
});
