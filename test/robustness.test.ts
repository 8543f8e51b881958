import { Dealer } from "zeromq";
import { describe, expect, it } from "vitest";
import { decode, encode, ErrorCode, PROTOCOL_VERSION } from "../runtime/index.js";
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

async function rawPeer(endpoint: string): Promise<{ socket: Dealer; request(frames: Buffer[]): Promise<Record<string, unknown>> }> {
  const socket = new Dealer({ linger: 0 });
  socket.connect(endpoint);
  return {
    socket,
    async request(frames) {
      await socket.send(frames);
      for (;;) {
        const [envelope] = await socket.receive();
        const message = decode(envelope!) as Record<string, unknown>;
        const sentId = (decode(frames[0]!) as { id: number }).id;
        if (message["id"] === sentId) return message;
      }
    },
  };
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
        await stranger.socket.send(fuzzMessage(rand));
        await insider.socket.send(fuzzMessage(rand));
      }
      // Frames on one connection arrive in order: these answers mean every fuzz frame was handled.
      await expect(within(stranger.request([Buffer.from(encode({ type: "hello", id: 77, v: PROTOCOL_VERSION }))]), 10_000, "stranger hello")).resolves.toMatchObject({
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

  it("oversize message - the sender's connection is dropped, the gateway serves everyone else", async () => {
    const gw = await startGateway({ maxMessageSize: 64 * 1024 });
    gw.addSubroutine("echo", (x: unknown) => x);
    const controller = controllerFor(gw, { timeoutMs: 1_000 });
    const client = await controller.getClient();
    const big = await controller.getClient();
    const huge = new Uint8Array(256 * 1024);
    await expect(big.sendSubroutineBatch("echo", huge, [], {}, { timeoutMs: 500 })).rejects.toMatchObject({
      code: expect.stringMatching(/TIMEOUT|CONNECTION|SESSION_ENDED/),
    });
    await expect(client.getSubroutineBatch("echo", ["fine"])).resolves.toBe("fine");
  });

  it("wrong shape with a session - a ProtocolError reply, and the session keeps working", async () => {
    const gw = await startGateway();
    const peer = await rawPeer(gw.endpoint);
    try {
      await peer.request([Buffer.from(encode({ type: "hello", id: 0, v: PROTOCOL_VERSION }))]);
      await peer.socket.send([Buffer.from(encode({ type: "rpc.call", id: 5, name: "x".repeat(1000), mode: "get", args: [], kwargs: {} }))]);
      const [envelope] = await within(peer.socket.receive(), 5_000, "protocol error reply");
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
