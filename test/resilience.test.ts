/**
 * Issue 12: a gateway no subroutine can kill, calls that never hang, values
 * that round-trip or are refused, memory that stays flat under churn. Where
 * the gateway's process could die, it runs in a child process.
 */
import type { ChildProcess } from "node:child_process";
import { describe, expect, it } from "vitest";
import { Dealer } from "zeromq";
import { Controller, ErrorCode, type Client } from "../runtime/index.js";
import { decode, encode } from "../protocol/index.js";
import { controllerFor, startGateway, within } from "./helpers.js";
import { freePort, kill, startProcess } from "./processes.js";

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

async function collect(client: Client, name: string, args: unknown[] = [], options: { timeoutMs?: number; signal?: AbortSignal } = {}) {
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
  it("non-Error throws, unencodable results and items, a generator that never yields: typed errors, and the gateway process serves on", async () => {
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
          await expect(client.getSubroutineBatch(name, [kind]), `${name} ${kind}`).rejects.toMatchObject({ code: ErrorCode.REMOTE, message: expect.stringMatching(message) });
        }
        // A generator throwing it after an item: the item arrives, then the RemoteError.
        const streamed = await collect(client, "throwsInStream", [kind]);
        expect(streamed.items, kind).toEqual([[0, "before"]]);
        expect(streamed.error, kind).toMatchObject({ code: ErrorCode.REMOTE, message: expect.stringMatching(message) });
      }
      await expect(client.getSubroutineBatch("throws", ["error"])).rejects.toMatchObject({ remoteName: "RangeError" });

      // A result CBOR cannot encode, sync and after an await: SWARMNET_BAD_RESULT.
      await expect(client.getSubroutineBatch("unencodable")).rejects.toMatchObject({ code: ErrorCode.BAD_RESULT, message: expect.stringMatching(/CBOR/) });
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
      // One that sleeps past the deadline between items, and a consumer that aborts it while it sleeps.
      const sleepy = await collect(client, "sleepyStream", [60_000], { timeoutMs: 300 });
      expect(sleepy.items).toEqual([[0, "first"]]);
      expect(sleepy.error).toMatchObject({ code: ErrorCode.TIMEOUT });
      expect(await client.getSubroutineBatch("echo", ["after a sleepy stream"])).toBe("after a sleepy stream");
      const aborter = new AbortController();
      const aborted = collect(client, "sleepyStream", [60_000], { signal: aborter.signal, timeoutMs: 30_000 });
      setImmediate(() => aborter.abort());
      expect((await within(aborted, 10_000, "aborted stream")).error).toBeDefined();
      const broken: unknown[] = [];
      for await (const item of client.stream<unknown>("sleepyStream", [60_000], {}, { timeoutMs: 30_000 })) {
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
  });

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
    await expect(smallClient.sendSubroutineBatch("sink", new Uint8Array(100 * 1024))).rejects.toMatchObject({ code: ErrorCode.MESSAGE_TOO_LARGE });
    expect(await smallClient.ping("still here")).toBe("still here");
    expect(gw.snapshot().replies.tooLarge).toBe(4);
  });
});
