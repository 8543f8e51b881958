/**
 * Issue 12: a gateway no subroutine can kill, calls that never hang, values
 * that round-trip or are refused, memory that stays flat under churn. Where
 * the gateway's process could die, it runs in a child process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import v8 from "node:v8";
import vm from "node:vm";
import { describe, expect, it, onTestFinished } from "vitest";
import { Router } from "zeromq";
import { Controller, ErrorCode, type Client } from "../runtime/index.js";
import { decode, encode } from "../protocol/index.js";
import { controllerFor, startGateway, within } from "./helpers.js";
import { freePort, kill, startProcess } from "./processes.js";
import { RawSession } from "./raw-session.js";

const HOSTILE = "test/fixtures/hostile-gateway.ts";
const MAX_MESSAGE_SIZE = 256 * 1024;

async function hostile(args: readonly (string | number)[] = [0, MAX_MESSAGE_SIZE], nodeArgs: readonly string[] = []) {
  const { child, port } = await startProcess(HOSTILE, args, nodeArgs);
  const controller = new Controller({ port, timeoutMs: 5_000, connectTimeoutMs: 5_000 });
  return { child, port, controller };
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

async function collect(
  client: Client,
  name: string,
  args: unknown[] = [],
  options: { timeoutMs?: number; idleTimeoutMs?: number; signal?: AbortSignal } = {},
) {
  const items: unknown[] = [];
  let error: unknown;
  try {
    for await (const [ident, buffer] of client.stream<unknown>(name, args, {}, options)) items.push([ident, buffer]);
  } catch (err) {
    error = err;
  }
  return { items, error };
}

describe("no subroutine can take the gateway down or wedge a handler", () => {
  it(
    "non-Error throws, unencodable results and items, a generator that never yields: typed errors, and the gateway process serves on",
    { timeout: 90_000 },
    async () => {
      const { child, controller } = await hostile();
      try {
        const client = await controller.getClient();
        const expected: Record<string, RegExp> = {
          nullProto: /null prototype/,
          message: /^disk full$/,
          string: /^a plain string$/,
          undefined: /undefined/,
          number: /42/,
          error: /^a real error$/,
        };
        for (const [kind, message] of Object.entries(expected)) {
          for (const name of ["throws", "rejects"]) {
            await expect(client.getSubroutineBatch(name, [kind]), `${name} ${kind}`).rejects.toMatchObject({
              code: ErrorCode.REMOTE,
              message: expect.stringMatching(message),
            });
          }
          // A generator throwing it after an item: the item arrives, then the RemoteError.
          const streamed = await collect(client, "throwsInStream", [kind]);
          expect(streamed.items, kind).toEqual([[0, "before"]]);
          expect(streamed.error, kind).toMatchObject({ code: ErrorCode.REMOTE, message: expect.stringMatching(message) });
        }
        await expect(client.getSubroutineBatch("throws", ["error"])).rejects.toMatchObject({ remoteName: "RangeError" });

        // A result CBOR cannot encode, sync and after an await: SWARMNET_BAD_RESULT.
        await expect(client.getSubroutineBatch("unencodable")).rejects.toMatchObject({
          code: ErrorCode.BAD_RESULT,
          message: expect.stringMatching(/CBOR/),
        });
        await expect(client.getSubroutineBatch("unencodableLater")).rejects.toMatchObject({ code: ErrorCode.BAD_RESULT });
        // An unencodable item yielded after an await: the items before it are delivered.
        const partial = await collect(client, "unencodableItem");
        expect(partial.items).toEqual([
          [0, "a"],
          [1, "b"],
        ]);
        expect(partial.error).toMatchObject({ code: ErrorCode.BAD_RESULT, message: expect.stringMatching(/item 2/) });

        // A generator that never yields: the client gives up at its deadline, the handler returns to idle.
        const stuck = await collect(client, "neverYields", [], { timeoutMs: 300 });
        expect(stuck.error).toMatchObject({ code: ErrorCode.TIMEOUT });
        expect(await client.getSubroutineBatch("echo", ["after a stuck stream"])).toBe("after a stuck stream");
        // One that sleeps past its idle bound between items, and a consumer that aborts it while it sleeps.
        const sleepy = await collect(client, "sleepyStream", [60_000], { timeoutMs: 300, idleTimeoutMs: 300 });
        expect(sleepy.items).toEqual([[0, "first"]]);
        expect(sleepy.error).toMatchObject({ code: ErrorCode.TIMEOUT });
        expect(await client.getSubroutineBatch("echo", ["after a sleepy stream"])).toBe("after a sleepy stream");
        // The abort waits for the generator's next step (so its finally runs first) for at most the
        // stream's timeoutMs; then the client cancels and the handler is idle.
        const aborter = new AbortController();
        const aborted = collect(client, "sleepyStream", [60_000], { signal: aborter.signal, timeoutMs: 300 });
        setImmediate(() => aborter.abort());
        expect((await within(aborted, 10_000, "aborted stream")).error).toBeDefined();
        expect(await client.getSubroutineBatch("echo", ["after an abort"])).toBe("after an abort");
        const broken: unknown[] = [];
        for await (const item of client.stream<unknown>("sleepyStream", [60_000], {}, { timeoutMs: 300 })) {
          broken.push(item);
          break; // the generator now sleeps a minute before its next item
        }
        expect(broken).toEqual([[0, "first"]]);
        expect(await client.getSubroutineBatch("echo", ["after a break"])).toBe("after a break");

        expect(alive(child)).toBe(true);
        expect(await client.getSubroutineBatch("pid")).toBe(child.pid);
      } finally {
        await within(controller.close(), 10_000, "controller close");
      }
    },
  );

  it(
    "thrown values whose inspection throws (revoked Proxy, trap, message getter), poisoned or over-long items and results, bad idents: typed errors, the gateway serves on",
    { timeout: 60_000 },
    async () => {
      const { child, controller } = await hostile();
      try {
        const client = await controller.getClient();
        // Four in a row would end the session if any of them crashed the handler: do each twice.
        for (const kind of ["revoked", "trap", "messageGetter", "bigint"]) {
          for (let round = 0; round < 2; round++) {
            await expect(client.getSubroutineBatch("poisonThrows", [kind]), kind).rejects.toMatchObject({ code: ErrorCode.REMOTE });
            const streamed = await collect(client, "poisonInStream", [kind]);
            expect(streamed.items, kind).toEqual([[0, "before"]]);
            expect(streamed.error, kind).toMatchObject({ code: ErrorCode.REMOTE });
          }
        }
        await expect(client.getSubroutineBatch("poisonThrows", ["bigint"])).rejects.toMatchObject({
          message: expect.stringContaining("10n"),
        });
        // An item whose getter throws: BAD_RESULT (the value cannot cross), not a RemoteError.
        const poisonedItem = await collect(client, "poisonItem");
        expect(poisonedItem.items).toEqual([[0, "before"]]);
        expect(poisonedItem.error).toMatchObject({ code: ErrorCode.BAD_RESULT });
        // More items than any decoder accepts: refused on the gateway, the handler is free at once.
        await expect(client.getSubroutineBatch("tooLongResult")).rejects.toMatchObject({
          code: ErrorCode.BAD_RESULT,
          message: expect.stringMatching(/1000001 items/),
        });
        const tooLong = await collect(client, "tooLongItem");
        expect(tooLong.items).toEqual([[0, "before"]]);
        expect(tooLong.error).toMatchObject({ code: ErrorCode.BAD_RESULT, message: expect.stringMatching(/1000001 items/) });
        // An ident must be a safe integer (NaN would never end the stream).
        for (const ident of [Number.NaN, 1.5, 2 ** 53 + 2]) {
          const bad = await collect(client, "badIdent", [ident]);
          expect(bad.error, String(ident)).toMatchObject({
            code: ErrorCode.BAD_RESULT,
            message: expect.stringMatching(/safe-integer ident/),
          });
        }
        expect((await collect(client, "badIdent", [-1])).items).toEqual([]); // a negative ident still ends the stream
        expect(alive(child)).toBe(true);
        expect(await client.getSubroutineBatch("pid")).toBe(child.pid);
        // Refused like any unencodable reply: poisoned item, long result, long item.
        expect(((await client.getSubroutineBatch("replies")) as { unencodable: number }).unencodable).toBeGreaterThanOrEqual(3);
      } finally {
        await within(controller.close(), 10_000, "controller close");
      }
    },
  );

  it("a result or request over maxMessageSize - MessageTooLargeError at once with the sizes; the client stays usable; the gateway counts it", async () => {
    const gw = await startGateway({ maxMessageSize: MAX_MESSAGE_SIZE });
    gw.addSubroutine("bytes", (n: number) => Buffer.alloc(n, 7));
    gw.addSubroutine("bigValue", (n: number) => ({ text: "x".repeat(n) }));
    gw.addSubroutine("sink", (kwargs: { buffer: Uint8Array }) => kwargs.buffer.length);
    gw.addSubroutine("bigItems", function* (n: number) {
      yield [0, Buffer.alloc(10, 1)];
      yield [1, Buffer.alloc(n, 2)];
      yield [2, Buffer.alloc(10, 3)];
    });
    // The deadline is long: a refusal must not wait for it.
    const controller = controllerFor(gw, { timeoutMs: 60_000 });
    const client = await controller.getClient();
    const over = MAX_MESSAGE_SIZE + 1;
    await expect(client.getSubroutineBatch("bytes", [over])).rejects.toMatchObject({
      code: ErrorCode.MESSAGE_TOO_LARGE,
      message: expect.stringMatching(new RegExp(`${over} bytes.*${MAX_MESSAGE_SIZE} bytes`)),
    });
    await expect(client.getSubroutineBatch("bigValue", [over])).rejects.toMatchObject({ code: ErrorCode.MESSAGE_TOO_LARGE });
    expect((await client.getSubroutineBatch<Uint8Array>("bytes", [1000])).length).toBe(1000);
    const streamed = await collect(client, "bigItems", [over]);
    expect(streamed.items.map((item) => (item as [number])[0])).toEqual([0]);
    expect(streamed.error).toMatchObject({ code: ErrorCode.MESSAGE_TOO_LARGE });
    expect(gw.snapshot().replies).toMatchObject({ tooLarge: 3 });

    // A request over the gateway's limit (told in its welcome) is refused before it is sent.
    await expect(client.sendSubroutineBatch("sink", new Uint8Array(over))).rejects.toMatchObject({
      code: ErrorCode.MESSAGE_TOO_LARGE,
      message: expect.stringMatching(new RegExp(`${over} bytes.*${MAX_MESSAGE_SIZE} bytes`)),
    });
    expect(await client.sendSubroutineBatch("sink", new Uint8Array(1000))).toBe(1000);
    // And over the client's own, smaller limit: the gateway answers within it.
    const small = controllerFor(gw, { maxMessageSize: 64 * 1024 });
    const smallClient = await small.getClient();
    await expect(smallClient.getSubroutineBatch("bytes", [100 * 1024])).rejects.toMatchObject({ code: ErrorCode.MESSAGE_TOO_LARGE });
    await expect(smallClient.sendSubroutineBatch("sink", new Uint8Array(100 * 1024))).rejects.toMatchObject({
      code: ErrorCode.MESSAGE_TOO_LARGE,
    });
    expect(await smallClient.ping("still here")).toBe("still here");
    expect(gw.snapshot().replies.tooLarge).toBe(4);
  });
});

/** The CBOR head of an unsigned integer written in the 8-byte form whatever its size, as Python's cbor2 may. */
function uint64(n: number): Buffer {
  const bytes = Buffer.alloc(9);
  bytes[0] = 0x1b;
  bytes.writeBigUInt64BE(BigInt(n), 1);
  return bytes;
}

/** A CBOR map built by hand: keys and values are encoded with cbor-x except those given as raw bytes. */
function cborMap(entries: Record<string, unknown>): Buffer {
  const parts: Uint8Array[] = [Buffer.from([0xa0 + Object.keys(entries).length])];
  for (const [key, value] of Object.entries(entries)) parts.push(encode(key), Buffer.isBuffer(value) ? value : encode(value));
  return Buffer.concat(parts);
}

describe("values round-trip or are refused", () => {
  it("-0 and lone surrogates are refused before sending (client) or answered SWARMNET_BAD_RESULT (gateway); surrogate pairs and 0 go through", async () => {
    const gw = await startGateway();
    gw.addSubroutine("echo", (x: unknown) => x);
    gw.addSubroutine("negativeZero", () => -0);
    gw.addSubroutine("loneSurrogate", () => ({ text: "abc\ud800" }));
    gw.addSubroutine("items", function* () {
      yield [0, "fine"];
      yield [1, [1, -0]];
    });
    const client = await controllerFor(gw).getClient();
    await expect(client.getSubroutineBatch("echo", [-0])).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
      message: expect.stringMatching(/-0/),
    });
    await expect(client.getSubroutineBatch("echo", [{ deep: ["x\udc00y"] }])).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
      message: expect.stringMatching(/surrogate/),
    });
    await expect(client.ping("\ud800")).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    expect(() => client.stream("echo", [-0])[Symbol.asyncIterator]()).not.toThrow();
    await expect(collect(client, "items", [-0]).then((r) => r.error)).resolves.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    const cyclic: Record<string, unknown> = {};
    cyclic["self"] = cyclic;
    await expect(client.getSubroutineBatch("echo", [cyclic])).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });

    await expect(client.getSubroutineBatch("negativeZero")).rejects.toMatchObject({
      code: ErrorCode.BAD_RESULT,
      message: expect.stringMatching(/-0/),
    });
    await expect(client.getSubroutineBatch("loneSurrogate")).rejects.toMatchObject({
      code: ErrorCode.BAD_RESULT,
      message: expect.stringMatching(/surrogate/),
    });
    const streamed = await collect(client, "items");
    expect(streamed.items).toEqual([[0, "fine"]]);
    expect(streamed.error).toMatchObject({ code: ErrorCode.BAD_RESULT, message: expect.stringMatching(/item 1.*-0/) });

    const emoji = "pair 😀 ok";
    expect(await client.getSubroutineBatch("echo", [emoji])).toBe(emoji);
    expect(Object.is(await client.getSubroutineBatch("echo", [0]), 0)).toBe(true);
    expect(await client.getSubroutineBatch("echo", [[1.5, -2, 2 ** 53, -(2 ** 53)]])).toEqual([1.5, -2, 2 ** 53, -(2 ** 53)]);
  });

  it("a 64-bit CBOR integer from a non-JavaScript client reaches the subroutine as a number; beyond 2^53 it stays exact", async () => {
    const gw = await startGateway();
    gw.addSubroutine("describe", (x: unknown) => [typeof x, typeof x === "number" ? x + 1 : String(x)]);
    // A raw DEALER that speaks the delivery header (test/raw-session.ts), as a client in another language would.
    const dealer = new RawSession(gw.endpoint);
    const receive = (): Promise<Uint8Array[]> => within(dealer.receive(), 5_000, "an answer");
    try {
      await dealer.send([encode({ type: "hello", id: 0, v: 1 })]);
      const [welcome] = await receive();
      expect(decode(welcome!)).toMatchObject({ type: "welcome", status: 200 });
      const call = (id: number, arg: Buffer): Buffer =>
        cborMap({ type: "rpc.call", id, name: "describe", mode: "get", args: Buffer.concat([Buffer.from([0x81]), arg]), kwargs: {} });
      await dealer.send([call(1, uint64(2 ** 40))]);
      expect(decode((await receive())[0]!)).toMatchObject({ type: "rpc.result", id: 1, value: ["number", 2 ** 40 + 1] });
      await dealer.send([call(2, uint64(7))]);
      expect(decode((await receive())[0]!)).toMatchObject({ type: "rpc.result", id: 2, value: ["number", 8] });
      const negative = Buffer.alloc(9);
      negative[0] = 0x3b;
      negative.writeBigUInt64BE(2n ** 40n - 1n, 1); // -(2^40)
      await dealer.send([call(3, negative)]);
      expect(decode((await receive())[0]!)).toMatchObject({ type: "rpc.result", id: 3, value: ["number", -(2 ** 40) + 1] });
      const huge = Buffer.alloc(9);
      huge[0] = 0x1b;
      huge.writeBigUInt64BE(2n ** 60n + 1n, 1);
      await dealer.send([call(4, huge)]);
      expect(decode((await receive())[0]!)).toMatchObject({ type: "rpc.result", id: 4, value: ["bigint", (2n ** 60n + 1n).toString()] });
    } finally {
      dealer.close();
    }
  });
});

describe("no call hangs", () => {
  it("a call's deadline counts its time in the queue; timeoutMs of 2^31 and more works; close() fails queued calls at once with ClosedError", async () => {
    const gw = await startGateway();
    let release: (value: string) => void = () => undefined;
    let held: () => void = () => undefined;
    const nextHeld = (): Promise<void> => new Promise((resolve) => (held = resolve));
    gw.addSubroutine("held", () => {
      held();
      return new Promise<string>((resolve) => (release = resolve));
    });
    gw.addSubroutine("slow", (ms: number) => new Promise((resolve) => setTimeout(() => resolve("late"), ms)));
    gw.addSubroutine("echo", (x: unknown) => x);
    const controller = controllerFor(gw, { timeoutMs: 2 ** 31, connectTimeoutMs: 2 ** 31 + 5 });
    const client = await controller.getClient();

    // Queued behind a call that is held until we say: the second call's deadline passes while it waits.
    const order: string[] = [];
    const first = client.getSubroutineBatch("held", [], {}, { timeoutMs: 60_000 }).then((v) => (order.push("first"), v));
    const queued = client.getSubroutineBatch("echo", ["queued"], {}, { timeoutMs: 300 }).catch((e: unknown) => (order.push("queued"), e));
    await expect(within(queued, 10_000, "the queued call's deadline")).resolves.toMatchObject({ code: ErrorCode.TIMEOUT });
    release("done");
    expect(await first).toBe("done");
    expect(order).toEqual(["queued", "first"]);

    // 2^31 ms and more: Node's timers would fire after ~1 ms; these wait for the answer.
    expect(await client.getSubroutineBatch("slow", [50])).toBe("late");
    expect(await client.getSubroutineBatch("slow", [50], {}, { timeoutMs: 2 ** 31 })).toBe("late");
    expect(await client.getSubroutineBatch("slow", [50], {}, { timeoutMs: 10 * 365 * 86_400_000 })).toBe("late");
    const items: unknown[] = [];
    gw.addSubroutine("ticks", async function* () {
      for (let i = 0; i < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        yield [i, i];
      }
    });
    for await (const [ident] of client.stream("ticks", [], {}, { timeoutMs: 2 ** 31 })) items.push(ident);
    expect(items).toEqual([0, 1, 2]);

    // close() with calls queued: they fail at once with ClosedError, not one deadline after another.
    const running = nextHeld();
    const inFlight = client.getSubroutineBatch("held", [], {}, { timeoutMs: 60_000 });
    await within(running, 5_000, "the held call to reach the gateway");
    const waiting = [1, 2, 3].map((n) => client.getSubroutineBatch("echo", [n], {}, { timeoutMs: 60_000 }).catch((e: unknown) => e));
    const closing = client.closeHandler();
    for (const settled of await within(Promise.all(waiting), 5_000, "queued calls to settle on close")) {
      expect(settled).toMatchObject({ code: ErrorCode.CLOSED });
    }
    release("finally");
    expect(await inFlight).toBe("finally");
    await within(closing, 5_000, "closeHandler");
    await expect(client.ping()).rejects.toMatchObject({ code: ErrorCode.CLOSED });
  });

  it("close with a never-answered call in flight waits only the close grace (ClosedError); after gateway stop + close() the process exits by itself", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/exit-after-close.ts"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    onTestFinished(() => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    // The calls' deadlines are 2^31 ms: a timer left behind would keep the child alive far past this bound.
    const code = await within(new Promise<number | null>((resolve) => child.once("exit", resolve)), 45_000, "the child to exit by itself");
    expect(code).toBe(0);
    expect(out).toMatch(/^CLOSE SWARMNET_CLOSED \d+$/m);
    expect(out).toMatch(/^STOPPED SWARMNET_SESSION_ENDED$/m);
    expect(out).toMatch(/^DONE \d+$/m);
  }, 60_000);

  it("a hostile argument getter is InvalidArgumentError; a stream's timeoutMs is validated; a frame the client cannot decode cancels the request on the gateway", async () => {
    const gw = await startGateway();
    gw.addSubroutine("echo", (x: unknown) => x);
    const client = await controllerFor(gw).getClient();
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const hostileArg = {
      get a(): never {
        throw proxy;
      },
    };
    await expect(client.getSubroutineBatch("echo", [hostileArg])).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await expect(client.getSubroutineBatch("echo", [new Array(1_000_001).fill(0)])).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
    });
    for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1.5]) {
      expect(() => client.stream("echo", [], {}, { timeoutMs }), String(timeoutMs)).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
      );
    }
    expect(await client.getSubroutineBatch("echo", ["still usable"])).toBe("still usable");

    // A fake gateway answers a stream with a frame no decoder takes: the client fails the stream and sends rpc.cancel.
    const router = new Router();
    onTestFinished(() => router.close());
    await router.bind("tcp://127.0.0.1:0");
    const port = Number(/:(\d+)$/.exec(router.lastEndpoint!)![1]);
    const fake = (async () => {
      const seen: Array<Record<string, unknown>> = [];
      for await (const [peer, envelope] of router) {
        const message = decode(envelope!) as Record<string, unknown>;
        seen.push(message);
        if (message["type"] === "hello") {
          await router.send([peer!, encode({ type: "welcome", id: message["id"], status: "OK", handlerId: 1, v: 1, livenessMs: 60_000 })]);
        } else if (message["type"] === "stream.open") {
          await router.send([peer!, Buffer.from([0x9a, 0x00, 0x0f, 0x42, 0x41])]); // an array of 1,000,001 items, truncated
        } else if (message["type"] === "rpc.cancel") {
          return seen;
        }
      }
      return seen;
    })();
    const fakeController = new Controller({ port, timeoutMs: 500, connectTimeoutMs: 5_000 }); // close waits min(timeoutMs, 5 s) for a session.closed the fake never sends
    onTestFinished(() => within(fakeController.close(), 10_000, "fake controller close"));
    const fakeClient = await fakeController.getClient();
    const failed = await collect(fakeClient, "anything", [], { timeoutMs: 60_000 });
    expect(failed.error).toMatchObject({ code: ErrorCode.PROTOCOL });
    const seen = await within(fake, 10_000, "the client's rpc.cancel");
    const opened = seen.find((m) => m["type"] === "stream.open")!;
    expect(seen.at(-1)).toMatchObject({ type: "rpc.cancel", id: opened["id"] });
  });

  it("a gateway SIGKILLed and restarted on the same port - both calls on one client settle and controller.close() returns", async () => {
    const port = await freePort();
    let { child } = await startProcess(HOSTILE, [port, MAX_MESSAGE_SIZE]);
    const controller = new Controller({ port, timeoutMs: 1_500, connectTimeoutMs: 5_000 });
    try {
      const client = await controller.getClient();
      expect(await client.ping("up")).toBe("up");
      const first = client.getSubroutineBatch("slow", [60_000]).catch((e: unknown) => e);
      // A longer deadline: it is still live when the first one times out, and goes out to the new gateway.
      const second = client.getSubroutineBatch("echo", ["second"], {}, { timeoutMs: 60_000 }).catch((e: unknown) => e);
      await kill(child);
      ({ child } = await startProcess(HOSTILE, [port, MAX_MESSAGE_SIZE]));
      const [a, b] = await within(Promise.all([first, second]), 15_000, "both calls to settle");
      expect(a).toMatchObject({ code: expect.stringMatching(/SWARMNET_(TIMEOUT|SESSION_ENDED|CONNECTION)/) });
      expect(b).toMatchObject({ code: ErrorCode.SESSION_ENDED });
      // The controller is not broken: a new client reaches the new gateway.
      const fresh = await controller.getClient();
      expect(await fresh.getSubroutineBatch("pid")).toBe(child.pid);
    } finally {
      await within(controller.close(), 10_000, "controller close");
    }
  }, 90_000);
});

describe("flat memory under churn", () => {
  it("20,000 cycles of getClient -> ping -> closeHandler grow the heap (after GC) by under 1 MiB on each side", async () => {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const { controller } = await hostile([0, MAX_MESSAGE_SIZE], ["--expose-gc"]);
    try {
      const probe = await controller.getClient();
      const heaps = async (): Promise<{ gateway: number; controller: number }> => {
        const gateway = await probe.getSubroutineBatch<number>("heap");
        gc();
        gc();
        return { gateway, controller: process.memoryUsage().heapUsed };
      };
      // Loops side by side (the pool holds them all): the same churn, in less wall time.
      const LOOPS = 8;
      const churn = async (cycles: number): Promise<void> => {
        await Promise.all(
          Array.from({ length: LOOPS }, async () => {
            for (let i = 0; i < cycles / LOOPS; i++) {
              const client = await controller.getClient();
              expect(await client.ping(i)).toBe(i);
              await client.closeHandler();
            }
          }),
        );
      };
      await churn(2_000); // warm-up: code compiled, caches filled
      const before = await heaps();
      await churn(20_000);
      const after = await heaps();
      const growth = { gateway: after.gateway - before.gateway, controller: after.controller - before.controller };
      expect(growth.gateway, `gateway heap growth ${growth.gateway} B`).toBeLessThan(1024 * 1024);
      expect(growth.controller, `controller heap growth ${growth.controller} B`).toBeLessThan(1024 * 1024);
      expect(controller.clients.length).toBe(1);
    } finally {
      await within(controller.close(), 10_000, "controller close");
    }
  }, 300_000);
});
