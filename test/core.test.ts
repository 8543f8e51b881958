import { describe, expect, it } from "vitest";
import { Controller, DataType, ErrorCode, Gateway, fromBytes, registerClass, strToBytes, toBytes, type Kwargs } from "../runtime/index.js";
import { controllerFor, startGateway, within } from "./helpers.js";

class Point {
  constructor(
    public x: number,
    public y: number,
  ) {}
  norm(): number {
    return Math.hypot(this.x, this.y);
  }
}
registerClass(Point, 40_501);

async function exampleGateway(options = {}): Promise<Gateway> {
  const gw = await startGateway(options);
  gw.addSubroutine("mount_usage", (requestId: number) => toBytes(DataType.int, requestId * 2));
  gw.addSubroutine("info", async (name: string, kwargs: Kwargs) => {
    await Promise.resolve();
    return { name, kwargs, list: [1, 2, 3], nested: { ok: true } };
  });
  gw.addSubroutine("set_io", (pin: number, value: boolean, kwargs: Kwargs & { buffer: Uint8Array }) =>
    value ? pin * 1000 + kwargs.buffer.length : -pin,
  );
  gw.addSubroutine("fails", (message: string) => {
    throw new RangeError(message);
  });
  gw.addSubroutine("fails_async", async () => {
    await Promise.resolve();
    throw new Error("async failure");
  });
  gw.addSubroutine("point", (p: Point) => new Point(p.x * 2, p.y * 2));
  gw.addSubroutine("slow", (ms: number) => new Promise((r) => setTimeout(() => r("late"), ms)));
  return gw;
}

describe("core calls over real ZeroMQ sockets", () => {
  it("ping - round trip returns the payload, strings and bytes alike", async () => {
    const gw = await exampleGateway();
    const client = await controllerFor(gw).getClient();
    expect(client.handlerId).toBe(1);
    await expect(client.ping("hello")).resolves.toBe("hello");
    const bytes = await client.ping(new Uint8Array([1, 2, 3]));
    expect(Array.from(bytes as Uint8Array)).toEqual([1, 2, 3]);
  });

  it("batch get - bytes come back as bytes, other values as CBOR values", async () => {
    const gw = await exampleGateway();
    const client = await controllerFor(gw).getClient();
    const bytes = await client.getSubroutineBatch("mount_usage", [21]);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(fromBytes(DataType.int, bytes)).toBe(42);
    await expect(client.getSubroutineBatch("info", ["disk"], { unit: "GiB", deep: [1, { a: null }] })).resolves.toEqual({
      name: "disk",
      kwargs: { unit: "GiB", deep: [1, { a: null }] },
      list: [1, 2, 3],
      nested: { ok: true },
    });
  });

  it("batch send - the buffer reaches the subroutine as kwargs.buffer with the args, an integer comes back", async () => {
    const gw = await exampleGateway();
    const client = await controllerFor(gw).getClient();
    await expect(client.sendSubroutineBatch("set_io", strToBytes("abcdef"), [7, true])).resolves.toBe(7006);
    await expect(client.sendSubroutineBatch("set_io", new Uint8Array(0), [3, false])).resolves.toBe(-3);
  });

  it("batch send - a subroutine that returns a non-integer is a typed error", async () => {
    const gw = await exampleGateway();
    gw.addSubroutine("not_int", () => "text");
    const client = await controllerFor(gw).getClient();
    await expect(client.sendSubroutineBatch("not_int", new Uint8Array(1))).rejects.toMatchObject({ code: ErrorCode.BAD_RESULT });
    await expect(client.ping("still")).resolves.toBe("still");
  });

  it("kwargs - reach the subroutine as its last argument, always present", async () => {
    const gw = await exampleGateway();
    const seen: unknown[][] = [];
    gw.addSubroutine("spy", (...args: unknown[]) => {
      seen.push(args);
      return args.length;
    });
    const client = await controllerFor(gw).getClient();
    await expect(client.getSubroutineBatch("spy", [1, "two"], { three: 3 })).resolves.toBe(3);
    await expect(client.getSubroutineBatch("spy")).resolves.toBe(1);
    expect(seen).toEqual([[1, "two", { three: 3 }], [{}]]);
  });

  it("unknown subroutine - SubroutineNotFoundError, and the handler stays usable", async () => {
    const gw = await exampleGateway();
    const client = await controllerFor(gw).getClient();
    await expect(client.getSubroutineBatch("no_such_thing")).rejects.toMatchObject({
      code: ErrorCode.SUBROUTINE_NOT_FOUND,
      name: "SubroutineNotFoundError",
    });
    await expect(client.getSubroutineBatch("mount_usage", [1])).resolves.toBeInstanceOf(Uint8Array);
  });

  it("subroutine that throws - RemoteError with its message, sync or async, and the handler stays usable", async () => {
    const gw = await exampleGateway();
    const client = await controllerFor(gw).getClient();
    await expect(client.getSubroutineBatch("fails", ["bad pin"])).rejects.toMatchObject({
      code: ErrorCode.REMOTE,
      message: "bad pin",
      remoteName: "RangeError",
    });
    await expect(client.getSubroutineBatch("fails_async")).rejects.toMatchObject({ code: ErrorCode.REMOTE, message: "async failure" });
    await expect(client.ping()).resolves.toBe("ping");
    expect(gw.snapshot().handlers[0]?.state).toBe("idle");
  });

  it("removeSubroutine - a removed name is unknown from then on", async () => {
    const gw = await exampleGateway();
    const client = await controllerFor(gw).getClient();
    await expect(client.getSubroutineBatch("info", ["x"])).resolves.toMatchObject({ name: "x" });
    expect(gw.removeSubroutine("info")).toBe(true);
    await expect(client.getSubroutineBatch("info", ["x"])).rejects.toMatchObject({ code: ErrorCode.SUBROUTINE_NOT_FOUND });
  });

  it("registerClass - a custom class crosses the wire both ways as itself", async () => {
    const gw = await exampleGateway();
    const client = await controllerFor(gw).getClient();
    const p = await client.getSubroutineBatch<Point>("point", [new Point(3, 4)]);
    expect(p).toBeInstanceOf(Point);
    expect(p.norm()).toBe(10);
  });

  it("deadline - a slow call fails with TimeoutError and the late answer does not leak into the next call", async () => {
    const gw = await exampleGateway();
    const client = await controllerFor(gw).getClient();
    await expect(client.getSubroutineBatch("slow", [300], {}, { timeoutMs: 50 })).rejects.toMatchObject({ code: ErrorCode.TIMEOUT });
    // The timeout cancelled the call on the handler: the next call is served at once and gets its own answer.
    await expect(client.getSubroutineBatch("info", ["after"])).resolves.toMatchObject({ name: "after" });
    expect(gw.snapshot().handlers[0]?.state).toBe("idle");
    await expect(within(client.getSubroutineBatch("slow", [1]), 5_000, "second slow call")).resolves.toBe("late");
  });

  it("timeout stack - a failed call's stack points at the caller", async () => {
    const gw = await exampleGateway();
    const client = await controllerFor(gw).getClient();
    let error: Error | undefined;
    try {
      await client.getSubroutineBatch("slow", [200], {}, { timeoutMs: 20 });
    } catch (e) {
      error = e as Error;
    }
    // The first frame is the awaiting caller's line (no timer, no xstate, no socket callback).
    expect(error?.stack?.split("\n")[1]).toContain("core.test.ts");
    expect(error?.stack).not.toMatch(/xstate|node:internal\/timers/);
  });

  it("bad input on the client - typed errors before anything is sent", async () => {
    const gw = await exampleGateway();
    const client = await controllerFor(gw).getClient();
    expect(() => client.getSubroutineBatch("", [])).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    expect(() => client.getSubroutineBatch("x", "nope" as unknown as unknown[])).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    await expect(client.sendSubroutineBatch("set_io", "text" as unknown as Uint8Array)).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
    });
    await expect(client.getSubroutineBatch("info", [() => 1])).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    expect(() => new Gateway({ maxPoolSize: 0 })).toThrow(/maxPoolSize/);
    expect(() => new Controller({ gateways: ["udp://x:1"] })).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });
});

describe("lifecycle", () => {
  it("pool full - third client gets PoolFullError (503) and the gateway keeps serving; a closed handler frees its slot at once", async () => {
    const gw = await exampleGateway({ maxPoolSize: 2 });
    const controller = controllerFor(gw);
    const a = await controller.getClient();
    const b = await controller.getClient();
    await expect(controller.getClient()).rejects.toMatchObject({ code: ErrorCode.POOL_FULL, status: 503, name: "PoolFullError" });
    await expect(a.ping("a")).resolves.toBe("a");
    expect(gw.snapshot().supervisor).toMatchObject({ poolSize: 2, maxPoolSize: 2 });
    await b.closeHandler();
    expect(gw.snapshot().supervisor.poolSize).toBe(1);
    const c = await controller.getClient();
    await expect(c.ping("c")).resolves.toBe("c");
    expect(gw.snapshot().supervisor.stats).toMatchObject({ accepted: 3, refused: 1 });
  });

  it("await using - leaving the block closes the handler and frees its slot", async () => {
    const gw = await exampleGateway({ maxPoolSize: 1 });
    const controller = controllerFor(gw);
    {
      await using client = await controller.getClient();
      await expect(client.ping()).resolves.toBe("ping");
      expect(gw.snapshot().supervisor.poolSize).toBe(1);
    }
    expect(gw.snapshot().supervisor.poolSize).toBe(0);
    const again = await controller.getClient();
    await expect(again.ping("again")).resolves.toBe("again");
    await again.closeHandler();
    await again.closeHandler(); // a no-op when already closed
    await expect(again.ping()).rejects.toMatchObject({ code: ErrorCode.CLOSED });
  });

  it("closeGateway - stops the gateway and resolves `closed`", async () => {
    const gw = await exampleGateway();
    const controller = controllerFor(gw);
    const client = await controller.getClient();
    const other = await controller.getClient();
    await client.closeGateway();
    await within(gw.closed, 5_000, "gateway closed");
    expect(gw.snapshot().state).toBe("stopped");
    await expect(other.ping()).rejects.toMatchObject({ code: expect.stringMatching(/SESSION_ENDED|CLOSED|TIMEOUT/) });
  });

  it("closeGateway - refused with a typed error when the gateway disallows it", async () => {
    const gw = await exampleGateway({ allowRemoteClose: false });
    const client = await controllerFor(gw).getClient();
    await expect(client.closeGateway()).rejects.toMatchObject({ code: ErrorCode.REMOTE_CLOSE_DISABLED });
    await expect(client.ping()).resolves.toBe("ping");
    expect(gw.snapshot().state).toBe("running");
  });

  it("gateway never started - getClient fails with ConnectionRefusedError instead of hanging", async () => {
    const gw = new Gateway({ port: 0 }); // never started: nothing listens
    const probe = await startGateway(); // borrow a free port, then free it
    const port = probe.port;
    await probe.stop();
    const controller = new Controller({ port, connectTimeoutMs: 300, timeoutMs: 300 });
    await expect(within(controller.getClient(), 5_000, "getClient")).rejects.toMatchObject({ code: ErrorCode.CONNECTION_REFUSED });
    await controller.close();
    await gw.stop();
  });

  it("gateway stops mid-session - a call in flight fails with a typed error, not a hang", async () => {
    const gw = await exampleGateway();
    const client = await controllerFor(gw).getClient({});
    const pending = client.getSubroutineBatch("slow", [5_000], {}, { timeoutMs: 2_000 });
    await gw.stop();
    await expect(within(pending, 5_000, "pending call")).rejects.toMatchObject({
      code: expect.stringMatching(/SESSION_ENDED|TIMEOUT/),
    });
  });

  it("gateway start - a port in use rejects with the cause, and start twice is refused", async () => {
    const gw = await exampleGateway();
    const clash = new Gateway({ port: gw.port });
    await expect(clash.start()).rejects.toThrow(/could not bind/);
    await expect(gw.start()).rejects.toMatchObject({ code: ErrorCode.CLOSED });
  });
});
