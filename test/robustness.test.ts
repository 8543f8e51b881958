import { describe, expect, it } from "vitest";
import { ErrorCode } from "../runtime/index.js";
import { decode, encode, PROTOCOL_VERSION } from "../runtime/internal.js";
import { RawSession } from "./raw-session.js";
import { controllerFor, startGateway, within } from "./helpers.js";

/** Small deterministic PRNG (mulberry32), so a failing fuzz run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(rand: () => number, max: number): Buffer {
  const n = Math.floor(rand() * max);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

const validShapes: object[] = [
  { type: "hello", id: 1, v: PROTOCOL_VERSION },
  { type: "ping", id: 2, data: "x" },
  { type: "rpc.call", id: 3, name: "echo", mode: "get", args: [1], kwargs: {} },
  { type: "rpc.call", id: 4, name: "echo", mode: "send", args: [], kwargs: {} },
  { type: "session.close", id: 5 },
  { type: "rpc.cancel", id: 6 },
];

/** Garbage of every kind: random bytes, truncated or mutated envelopes, wrong types, extra frames. */
function fuzzMessage(rand: () => number): Buffer[] {
  const shape = validShapes[Math.floor(rand() * validShapes.length)]!;
  const valid = Buffer.from(encode(shape));
  switch (Math.floor(rand() * 8)) {
    case 0:
      return [randomBytes(rand, 64)];
    case 1:
      return [valid.subarray(0, Math.floor(rand() * valid.length))];
    case 2: {
      const m = Buffer.from(valid);
      for (let i = 0; i < 3; i++) m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
      return [m];
    }
    case 3:
      return [Buffer.from(encode({ ...shape, id: ["not", "a", "number"] }))];
    case 4:
      return [Buffer.from(encode({ type: `bogus.${Math.floor(rand() * 100)}`, id: 1 }))];
    case 5:
      return [valid, randomBytes(rand, 16), randomBytes(rand, 16)];
    case 6:
      return [Buffer.from(encode({ type: "rpc.call", id: 9, name: 12, mode: "get", args: "x", kwargs: [] }))];
    default:
      return [Buffer.from(encode([1, 2, 3])), Buffer.alloc(0)];
  }
}

async function rawPeer(endpoint: string): Promise<RawSession> {
  return new RawSession(endpoint);
}

describe("hostile input", () => {
  it("random and truncated frames - a few thousand from raw DEALERs never crash or wedge the gateway", async () => {
    const gw = await startGateway({ maxPoolSize: 3 });
    gw.addSubroutine("echo", (x: unknown) => x);
    const rand = prng(1857);

    // A stranger without a session: everything it sends is dropped.
    const stranger = await rawPeer(gw.endpoint);
    // A peer with a session: it hears a ProtocolError about each malformed frame.
    const insider = await rawPeer(gw.endpoint);
    try {
      await expect(insider.request([Buffer.from(encode({ type: "hello", id: 0, v: PROTOCOL_VERSION }))])).resolves.toMatchObject({
        type: "welcome",
      });
      for (let i = 0; i < 1500; i++) {
        await stranger.send(fuzzMessage(rand));
        await insider.send(fuzzMessage(rand));
      }
      // Frames on one connection arrive in order: these answers mean every fuzz frame was handled.
      await expect(
        within(stranger.request([Buffer.from(encode({ type: "hello", id: 77, v: PROTOCOL_VERSION }))]), 10_000, "stranger hello"),
      ).resolves.toMatchObject({
        id: 77,
      });
      await expect(
        within(insider.request([Buffer.from(encode({ type: "ping", id: 4242, data: "alive" }))]), 10_000, "insider ping"),
      ).resolves.toMatchObject({ type: "pong", data: "alive" });
    } finally {
      stranger.socket.close();
      insider.socket.close();
    }

    expect(gw.counters.protocolErrors).toBeGreaterThan(1000);
    expect(gw.snapshot().state).toBe("running");
    // A normal client still gets a slot and correct answers.
    const controller = controllerFor(gw);
    const client = await controller.getClient();
    await expect(client.getSubroutineBatch("echo", ["after the storm"])).resolves.toBe("after the storm");
  });

  it("oversize message - a client refuses it before sending (MessageTooLargeError) and stays usable; a raw peer's is dropped, the gateway serves everyone else", async () => {
    const gw = await startGateway({ maxMessageSize: 64 * 1024 });
    gw.addSubroutine("echo", (x: unknown) => x);
    const controller = controllerFor(gw, { timeoutMs: 1_000 });
    const client = await controller.getClient();
    const big = await controller.getClient();
    const huge = new Uint8Array(256 * 1024);
    // The welcome told the client the gateway's limit: nothing is sent, the client goes on.
    await expect(big.sendSubroutineBatch("echo", huge, [], {}, { timeoutMs: 500 })).rejects.toMatchObject({
      code: ErrorCode.MESSAGE_TOO_LARGE,
    });
    await expect(big.getSubroutineBatch("echo", ["still usable"])).resolves.toBe("still usable");
    // A peer that ignores the limit: ZeroMQ drops its connection, nobody else notices.
    const peer = await rawPeer(gw.endpoint);
    try {
      await within(peer.request([Buffer.from(encode({ type: "hello", id: 0, v: PROTOCOL_VERSION }))]), 5_000, "welcome");
      await peer.socket.send([
        Buffer.from(encode({ type: "rpc.call", id: 1, name: "echo", mode: "send", args: [], kwargs: {} })),
        Buffer.from(huge),
      ]);
    } finally {
      peer.socket.close();
    }
    await expect(client.getSubroutineBatch("echo", ["fine"])).resolves.toBe("fine");
  });

  it("wrong shape with a session - a ProtocolError reply, and the session keeps working", async () => {
    const gw = await startGateway();
    const peer = await rawPeer(gw.endpoint);
    try {
      await peer.request([Buffer.from(encode({ type: "hello", id: 0, v: PROTOCOL_VERSION }))]);
      await peer.send([Buffer.from(encode({ type: "rpc.call", id: 5, name: "x".repeat(1000), mode: "get", args: [], kwargs: {} }))]);
      const [envelope] = await within(peer.receive(), 5_000, "protocol error reply");
      expect(decode(envelope!)).toMatchObject({ type: "error", code: ErrorCode.PROTOCOL, message: expect.stringMatching(/name/) });
      await expect(within(peer.request([Buffer.from(encode({ type: "ping", id: 6, data: 1 }))]), 5_000, "ping")).resolves.toMatchObject({
        type: "pong",
      });
    } finally {
      peer.socket.close();
    }
  });

  it("a request from a peer without a session - answered with SESSION_ENDED, never served", async () => {
    const gw = await startGateway();
    let called = false;
    gw.addSubroutine("secret", () => {
      called = true;
      return 1;
    });
    const peer = await rawPeer(gw.endpoint);
    try {
      const reply = await within(
        peer.request([Buffer.from(encode({ type: "rpc.call", id: 9, name: "secret", mode: "get", args: [], kwargs: {} }))]),
        5_000,
        "reply",
      );
      expect(reply).toMatchObject({ type: "error", code: ErrorCode.SESSION_ENDED });
      expect(called).toBe(false);
    } finally {
      peer.socket.close();
    }
  });
});

describe("hostile input, second round: wrong types, huge sizes, out-of-order messages", () => {
  it("every field of every message with the wrong type, huge windows, deep nesting and messages out of order: typed errors, nothing served, memory bounded", async () => {
    const gw = await startGateway({ maxPoolSize: 2 });
    const received: unknown[][] = [];
    gw.addSubroutine("echo", (...args: unknown[]) => {
      received.push(args);
      return args[0];
    });
    gw.addSubroutine("slow", () => new Promise((r) => setTimeout(() => r("slow done"), 300)));
    const peer = await rawPeer(gw.endpoint);
    const replies: Record<string, unknown>[] = [];
    const collector = (async () => {
      for (;;) {
        try {
          const [env] = await peer.receive();
          replies.push(decode(env!) as Record<string, unknown>);
        } catch {
          return;
        }
      }
    })();
    const send = (m: unknown, raw?: Buffer): Promise<void> => peer.send(raw ? [Buffer.from(encode(m)), raw] : [Buffer.from(encode(m))]);
    const heapBefore = process.memoryUsage().heapUsed;
    try {
      await send({ type: "hello", id: 0, v: PROTOCOL_VERSION });
      await within(
        new Promise<void>((resolve) => {
          const check = (): void => (replies.some((r) => r["type"] === "welcome") ? resolve() : void setTimeout(check, 5));
          check();
        }),
        5_000,
        "the welcome",
      );
      const wrong: unknown[] = [null, true, -1, 1.5, 2 ** 53, "x", [], {}, new Uint8Array(3)];
      const shapes: Record<string, unknown>[] = [
        { type: "rpc.call", name: "echo", mode: "get", args: [], kwargs: {} },
        { type: "stream.open", name: "echo", args: [], kwargs: {}, window: 4, windowBytes: 1024 },
        { type: "stream.credit", items: 1, bytes: 1 },
        { type: "hello", v: PROTOCOL_VERSION },
        { type: "ping", data: 1 },
      ];
      let id = 100;
      for (const shape of shapes) {
        for (const field of Object.keys(shape)) {
          if (field === "type") continue;
          for (const bad of wrong) await send({ ...shape, id: id++, [field]: bad });
        }
      }
      // Huge declared sizes: windows and counts past every limit.
      await send({ type: "stream.open", id: id++, name: "echo", args: [], kwargs: {}, window: 2 ** 40, windowBytes: 1 });
      await send({ type: "stream.credit", id: id++, items: 2 ** 50, bytes: 2 ** 60 });
      await send({ type: "hello", id: id++, v: PROTOCOL_VERSION, waitMs: 2 ** 40 });
      // Deep nesting in args.
      let deep: unknown = 1;
      for (let i = 0; i < 200; i++) deep = [deep];
      await send({ type: "rpc.call", id: id++, name: "echo", mode: "get", args: [deep], kwargs: {} });
      // Out of order: credit and abort for streams that do not exist, cancel for nothing, a raw frame on a ping.
      await send({ type: "stream.credit", id: 9999, items: 1, bytes: 1 });
      await send({ type: "stream.abort", id: 9998 });
      await send({ type: "rpc.cancel", id: 9997 });
      await send({ type: "ping", id: id++, data: 1 }, Buffer.from("raw where none belongs"));
      // A second request while the handler is busy: refused as busy, not queued or mixed up.
      await send({ type: "rpc.call", id: 5000, name: "slow", mode: "get", args: [], kwargs: {} });
      await send({ type: "rpc.call", id: 5001, name: "echo", mode: "get", args: ["second"], kwargs: {} });
      await send({ type: "ping", id: 5002, data: "last" });
      await within(
        new Promise<void>((resolve) => {
          const check = (): void => (replies.some((r) => r["id"] === 5000) ? resolve() : void setTimeout(check, 5));
          check();
        }),
        10_000,
        "the slow call's answer",
      );
    } finally {
      peer.socket.close();
      await collector;
    }
    expect(replies.find((r) => r["id"] === 5001)).toMatchObject({ type: "error", code: ErrorCode.BUSY });
    expect(replies.find((r) => r["id"] === 5000)).toMatchObject({ type: "rpc.result", value: "slow done" });
    expect(replies.find((r) => r["id"] === 5002)).toMatchObject({ type: "pong", data: "last" });
    const protocolErrors = replies.filter((r) => r["code"] === ErrorCode.PROTOCOL);
    expect(protocolErrors.length).toBeGreaterThan(40);
    expect(protocolErrors.some((r) => String(r["message"]).includes("nest"))).toBe(true);
    // Only well-formed requests reached the subroutine: an args array spread, then a kwargs map.
    for (const args of received) {
      const kwargs = args.at(-1);
      expect(typeof kwargs === "object" && kwargs !== null && !Array.isArray(kwargs)).toBe(true);
    }
    expect(received.some((args) => JSON.stringify(args).includes("[[[[[[[["))).toBe(false);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    // And the gateway still serves a normal client.
    const client = await controllerFor(gw).getClient();
    await expect(client.getSubroutineBatch("echo", ["normal"])).resolves.toBe("normal");
  });
});
