/**
 * A newcomer's first hour (issue 14): what a pynetwork user tries first, and
 * the errors they meet, each saying what happened and what to do.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  Controller,
  DataType,
  ErrorCode,
  Gateway,
  RemoteError,
  generateKeyPair,
  intToBytes,
  toBytes,
  type SubroutineFailure,
} from "../runtime/index.js";
import { shortenMiddle, ProgressBar } from "../runtime/progress-bar.js";
import { controllerFor, startGateway, within } from "./helpers.js";
import { freePort, kill, startProcess } from "./processes.js";

const FORGETFUL = fileURLToPath(new URL("./fixtures/forgetful-script.ts", import.meta.url));
const GATEWAY_PROCESS = fileURLToPath(new URL("./fixtures/gateway-process.ts", import.meta.url));

/** A loopback port nobody listens on: bound by the OS, then released. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("the process and its calls", () => {
  it("a script that forgets controller.close() exits by itself once its work is done; SWARMNET_TRACE=client traces its clients", async () => {
    const gw = await startGateway();
    gw.addSubroutine("double", (x: number) => 2 * x);
    gw.addSubroutine("count", function* (n: number) {
      for (let i = 0; i < n; i++) yield [i, { i }];
    });
    const child = spawn(process.execPath, ["--import", "tsx", FORGETFUL, String(gw.port)], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, SWARMNET_TRACE: "client" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => void (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => void (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      // Its work takes well under a second; the bound only catches a process that never ends.
      const code = await within(exited, 25_000, "the forgetful script to exit by itself");
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    expect(stdout).toContain("ping hi\ncall 42\nitems 3\nwork done");
    expect(stderr).toMatch(/\[swarmnet:client\] client-1: \(new\) -> connecting/);
    expect(stderr).toMatch(/\[swarmnet:client\] client-1: connecting -> ready {2}\(gateway\.welcome\)/);
    // The clients it forgot still hold their slots until their lease runs out: they were never closed.
    expect(gw.snapshot().supervisor.stats.accepted).toBe(3);
  });

  it("a stream's gap between items is not bounded by timeoutMs (that bounds the first item); idleTimeoutMs bounds it when asked", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const gw = await startGateway();
    gw.addSubroutine("sensor", async function* () {
      yield [0, "first"];
      await gate;
      yield [1, "after a long pause"];
    });
    gw.addSubroutine("silent", async function* () {
      yield [0, "first"];
      await new Promise(() => undefined); // never yields again
    });
    gw.addSubroutine("late", async function* () {
      await new Promise(() => undefined);
      yield [0, "never"];
    });
    const controller = controllerFor(gw, { timeoutMs: 300 });
    const [a, b, c] = await Promise.all([controller.getClient(), controller.getClient(), controller.getClient()]);
    const items: unknown[] = [];
    const consuming = (async () => {
      for await (const [, value] of a.stream<string>("sensor")) items.push(value);
    })();
    // The pause lasts several timeoutMs: released only after a timer of 4x timeoutMs has fired.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    release();
    await within(consuming, 10_000, "the paused stream");
    expect(items).toEqual(["first", "after a long pause"]);

    const silent = (async () => {
      for await (const _ of b.stream("silent", [], {}, { idleTimeoutMs: 200, timeoutMs: 5_000 }));
    })();
    await expect(within(silent, 10_000, "idle bound")).rejects.toMatchObject({
      code: ErrorCode.TIMEOUT,
      message: expect.stringMatching(/^stream of silent: no item for 200 ms since the last one \(idleTimeoutMs\)/),
    });
    const late = (async () => {
      for await (const _ of c.stream("late"));
    })();
    await expect(within(late, 10_000, "first-item bound")).rejects.toMatchObject({
      code: ErrorCode.TIMEOUT,
      message: expect.stringMatching(/^stream of late: no item within 300 ms \(timeoutMs/),
    });
  });

  it("a subroutine's throw is reported on the gateway (name, client, stack); remoteStack sends the stack with the error", async () => {
    const failures: SubroutineFailure[] = [];
    const gw = await startGateway({ remoteStack: true, onSubroutineError: (f) => failures.push(f) });
    gw.addSubroutine("explode", function explodeOnPurpose() {
      throw new TypeError("wires crossed");
    });
    gw.addSubroutine("sputter", async function* () {
      yield [0, "ok"];
      throw new RangeError("sensor gone");
    });
    const quiet = await startGateway({ onSubroutineError: () => undefined });
    quiet.addSubroutine("explode", () => {
      throw new Error("no stack for you");
    });
    const client = await controllerFor(gw).getClient();
    const error = await client.getSubroutineBatch("explode").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: ErrorCode.REMOTE, remoteName: "TypeError", message: "wires crossed" });
    expect((error as RemoteError).remoteStack).toMatch(/explodeOnPurpose/);
    const streamed = (async () => {
      for await (const _ of client.stream("sputter"));
    })();
    await expect(streamed).rejects.toMatchObject({
      code: ErrorCode.REMOTE,
      remoteName: "RangeError",
      remoteStack: expect.stringContaining("sensor gone"),
    });
    expect(failures.map((f) => [f.name, f.kind, f.handlerId])).toEqual([
      ["explode", "call", client.handlerId],
      ["sputter", "stream", client.handlerId],
    ]);
    // The routing id as the client made it (`c` + 24 hex digits), not hex-encoded again.
    expect(failures[0]!.client).toMatch(/^c[0-9a-f]{24}$/);
    expect((failures[0]!.error as Error).stack).toMatch(/explodeOnPurpose/);

    const other = await controllerFor(quiet).getClient();
    const bare = await other.getSubroutineBatch("explode").catch((e: unknown) => e);
    expect(bare).toMatchObject({ code: ErrorCode.REMOTE, message: "no stack for you", remoteStack: undefined });
  });

  it("the deadline of a call names the subroutine; a 8-byte intToBytes result of a batch send is the integer", async () => {
    const gw = await startGateway();
    gw.addSubroutine("slow", () => new Promise(() => undefined));
    gw.addSubroutine("set_io", (pin: number) => intToBytes(pin * 1000));
    const client = await controllerFor(gw).getClient();
    await expect(client.getSubroutineBatch("slow", [], {}, { timeoutMs: 200 })).rejects.toMatchObject({
      code: ErrorCode.TIMEOUT,
      message: expect.stringMatching(/^no answer to call slow from gateway tcp:\/\/127\.0\.0\.1:\d+ within 200 ms/),
    });
    expect(await client.sendSubroutineBatch("set_io", toBytes(DataType.string, "on"), [7])).toBe(7000);
  });

  it("listSubroutines - each name and whether it streams", async () => {
    const gw = await startGateway();
    gw.addSubroutine("mount_usage", () => 47);
    gw.addSubroutine("sensor", async function* () {
      yield [0, 1];
    });
    gw.addSubroutine("blink", function* () {
      yield [0, 1];
    });
    const client = await controllerFor(gw).getClient();
    expect(await client.listSubroutines()).toEqual([
      { name: "blink", stream: true },
      { name: "mount_usage", stream: false },
      { name: "sensor", stream: true },
    ]);
  });

  it("controller.listSubroutines takes no pool slot: a pool of 1 held by another client still lists; nothing listening is refused", async () => {
    const gw = await startGateway({ maxPoolSize: 1, admin: true });
    gw.addSubroutine("mount_usage", () => 47);
    gw.addSubroutine("sensor", function* () {
      yield [0, 1];
    });
    const holder = await controllerFor(gw).getClient();
    const newcomer = controllerFor(gw);
    // The pool is full: a client would be refused ...
    await expect(newcomer.getClient()).rejects.toMatchObject({
      code: ErrorCode.POOL_FULL,
      message: expect.stringMatching(/^pool is full: its only handler is taken\. Free one/),
    });
    const before = gw.snapshot().supervisor.stats;
    // ... but the listing needs none, and does not count as a session accepted or refused.
    expect(await newcomer.listSubroutines()).toEqual([
      { name: "mount_usage", stream: false },
      { name: "sensor", stream: true },
    ]);
    expect(await newcomer.listSubroutines({ endpoint: gw.endpoint, timeoutMs: 3_000 })).toHaveLength(2);
    expect(gw.snapshot().supervisor.stats).toMatchObject({ accepted: before.accepted, refused: before.refused });
    expect(gw.snapshot().supervisor.poolSize).toBe(1);
    // The holder's own client lists through its session, as before.
    expect(await holder.listSubroutines()).toHaveLength(2);
    await expect(newcomer.listSubroutines({ timeout_ms: 5 } as never)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });

    const port = await deadPort();
    const nobody = controllerFor([], { gateways: [`127.0.0.1:${port}`], connectTimeoutMs: 600 });
    await expect(within(nobody.listSubroutines(), 10_000, "a listing from nobody")).rejects.toMatchObject({
      code: ErrorCode.CONNECTION_REFUSED,
      message: expect.stringMatching(new RegExp(`^connection refused at tcp://127\\.0\\.0\\.1:${port}: nothing listens there`)),
    });
  });
});

describe("errors that say what happened and what to do", () => {
  it("nothing listening - ConnectionRefusedError, told at once through onRetry while retrying until the deadline", async () => {
    const port = await deadPort();
    const controller = controllerFor([], { gateways: [`127.0.0.1:${port}`], connectTimeoutMs: 1_500 });
    let settled = false;
    const retried: { code: string; settledBefore: boolean }[] = [];
    const attempt = controller
      .getClient({ onRetry: (e) => retried.push({ code: e.code, settledBefore: settled }) })
      .finally(() => void (settled = true));
    await expect(within(attempt, 10_000, "refused connect")).rejects.toMatchObject({
      code: ErrorCode.CONNECTION_REFUSED,
      message: expect.stringMatching(new RegExp(`^connection refused at tcp://127\\.0\\.0\\.1:${port}: nothing listens there`)),
    });
    expect(retried.length).toBeGreaterThan(0);
    expect(retried[0]).toEqual({ code: ErrorCode.CONNECTION_REFUSED, settledBefore: false });
  });

  it("CURVE - a key the gateway does not know, or no CURVE at all, fails with HandshakeError at once, not at the connect deadline", async () => {
    const server = generateKeyPair();
    const laptop = generateKeyPair();
    const stranger = generateKeyPair();
    const gw = await startGateway({ curve: { ...server, authorizedKeys: [laptop.publicKey] } });
    const slow = { connectTimeoutMs: 60_000 };
    const strangerController = controllerFor(gw, { ...slow, curve: { ...stranger, serverPublicKey: server.publicKey } });
    const plainController = controllerFor(gw, slow);
    await expect(within(strangerController.getClient(), 20_000, "unauthorized key")).rejects.toMatchObject({
      code: ErrorCode.HANDSHAKE_FAILED,
      message: expect.stringContaining("did not authorize this client's CURVE key"),
    });
    await expect(within(plainController.getClient(), 20_000, "plain client")).rejects.toMatchObject({ code: ErrorCode.HANDSHAKE_FAILED });
    // The sessionless listing hears the same at once (its deadline is the same 60 s).
    await expect(within(strangerController.listSubroutines(), 20_000, "unauthorized listing")).rejects.toMatchObject({
      code: ErrorCode.HANDSHAKE_FAILED,
      message: expect.stringContaining("did not authorize this client's CURVE key"),
    });
    const friend = await controllerFor(gw, { curve: { ...laptop, serverPublicKey: server.publicKey } }).getClient();
    expect(await friend.ping("ok")).toBe("ok");
  });

  it("a gateway restarted quickly - the old client's call says the session is gone and to get a new client; the controller gets one", async () => {
    const port = await freePort();
    const first = await startProcess(GATEWAY_PROCESS, [port]);
    const controller = controllerFor([], { gateways: [`127.0.0.1:${port}`] });
    const client = await controller.getClient();
    expect(await client.getSubroutineBatch("pid")).toBe(first.child.pid);
    await kill(first.child);
    const second = await startProcess(GATEWAY_PROCESS, [port]);
    // ZeroMQ reconnects the old client to the new gateway, which never heard of its session.
    const error = await within(
      (async () => {
        for (let i = 0; i < 50; i++) {
          const e = await client.getSubroutineBatch("pid", [], {}, { timeoutMs: 1_000 }).catch((x: unknown) => x as { code: string });
          if ((e as { code?: string }).code !== ErrorCode.TIMEOUT) return e;
        }
        return undefined;
      })(),
      60_000,
      "the old client's call",
    );
    expect(error).toMatchObject({
      code: ErrorCode.SESSION_ENDED,
      // The delivery layer (resume refused) or the gateway's "no session" answer, whichever comes first: both say what to do.
      message: expect.stringMatching(/This client is closed: get a new one \(controller\.getClient\(\)\)/),
    });
    const fresh = await controller.getClient();
    expect(await fresh.getSubroutineBatch("pid")).toBe(second.child.pid);
  });

  it("pool full - the numbers and the fixes (maxPoolSize / --pool, waitMs / --wait); the stack points at the caller's line", async () => {
    const gw = await startGateway({ maxPoolSize: 2 });
    const controller = controllerFor(gw);
    await controller.getClient();
    const swarmError = (await controller.getSwarm(3).catch((e: unknown) => e)) as Error;
    expect(swarmError).toMatchObject({
      code: ErrorCode.POOL_FULL,
      message: expect.stringMatching(/^getSwarm\(3\): got 1 of 3 clients: pool is full: all 2 handlers are taken/),
    });
    expect(swarmError.message).toMatch(/maxPoolSize \/ swarmnet gateway --pool N/);
    expect(swarmError.message).toMatch(/getClient\(\{ waitMs \}\) \/ --wait MS/);
    expect(swarmError.stack?.split("\n")[1]).toMatch(/newcomer\.test\.ts|Controller\.getSwarm/);
    expect(swarmError.stack).toContain("newcomer.test.ts");
    expect(swarmError.stack).not.toContain("xstate");
    // What there is, when asked to make do: a swarm of the free slots.
    const partial = await controller.getSwarm(3, { min: 1 });
    expect(partial.clients).toHaveLength(1);
    await partial.close();
  });

  it("toBytes with a type that does not exist lists the types that do", () => {
    const double = (DataType as Record<string, DataType>)["double"]!;
    expect(() => toBytes(double, 1.5 as never)).toThrow(
      expect.objectContaining({
        code: ErrorCode.INVALID_ARGUMENT,
        message: expect.stringMatching(
          /DataType\.double[\s\S]*DataType\.int, DataType\.float, DataType\.string, DataType\.bool, DataType\.bytes, DataType\.cbor/,
        ),
      }),
    );
  });

  it("pynetwork habits - Gateway(1858) is the port, host:port is understood, unknown and snake_case options are refused with a hint", () => {
    expect(new Gateway(1858).options.port).toBe(1858);
    expect(new Gateway({ host: "127.0.0.1:1900" }).options).toMatchObject({ host: "127.0.0.1", port: 1900 });
    expect(new Controller({ host: "127.0.0.1:1900" }).endpoints).toEqual(["tcp://127.0.0.1:1900"]);
    expect(new Controller({ host: "tcp://10.0.0.2:1901" }).endpoints).toEqual(["tcp://10.0.0.2:1901"]);
    expect(new Controller(1902).endpoints).toEqual(["tcp://127.0.0.1:1902"]);
    const refused = (make: () => unknown, pattern: RegExp): void =>
      expect(make).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(pattern) }));
    refused(() => new Controller({ host: "127.0.0.1:1900", port: 1857 }), /'host' is "127\.0\.0\.1:1900" \(port 1900\) but 'port' is 1857/);
    refused(
      () => new Controller({ gateway_ip: "10.0.0.2" } as never),
      /Controller has no option 'gateway_ip' \(swarmnet's options are camelCase\): did you mean 'host'\?/,
    );
    refused(() => new Controller({ download_dir: "x" } as never), /no option 'download_dir'.*did you mean 'downloadDir'\?/);
    refused(() => new Gateway({ download_dir: "x" } as never), /Gateway has no option 'download_dir'.*did you mean 'downloadDir'\?/);
    refused(() => new Gateway({ maxPoolsize: 3 } as never), /no option 'maxPoolsize': did you mean 'maxPoolSize'\?/);
    refused(() => new Gateway({ prot: 1 } as never), /did you mean 'port'\?/);
  });

  it("progress bars shorten a long file name in the middle, keeping its extension", () => {
    expect(shortenMiddle("big.bin", 20)).toBe("big.bin");
    expect(shortenMiddle("reports-2026-11-quarterly-final.tar.gz", 15)).toBe("reports….tar.gz");
    const lines: string[] = [];
    const terminal = { columns: 100, write: (s: string) => void lines.push(s) } as unknown as NodeJS.WriteStream;
    const bar = new ProgressBar("get", terminal);
    const file = `logs/${"very-long-name-".repeat(8)}end.log`;
    bar.update({
      file,
      fileBytes: 1,
      fileSize: 2,
      fileDone: false,
      totalBytes: 1,
      totalSize: 2,
      transferred: 1,
      filesDone: 0,
      filesTotal: 1,
    } as never);
    const drawn = lines[0]!.replace(/^\r/, "").replace(/\u001b\[K$/, "");
    expect(drawn.length).toBeLessThanOrEqual(99);
    expect(drawn).toMatch(/ logs\/very-lon.*….*name-end\.log$/);
  });
});
