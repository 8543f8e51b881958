/**
 * The Python client (clients/python) against live swarmnet gateways: real
 * ZeroMQ sockets on loopback, /usr/bin/python3 in child processes. The
 * conformance cases (test/conformance/cases.json) run with both clients and are
 * checked by the same code.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it, onTestFinished } from "vitest";
import { Dealer } from "zeromq";
import { LinkKind, afterHeader, headerKind, isHeader } from "../actors/delivery.js";
import { decode, encode } from "../protocol/index.js";
import { ErrorCode, RemoteError, SwarmnetError, generateKeyPair, type Client, type Gateway } from "../runtime/index.js";
import { checkOutcome, type Case, type Json, type Outcome } from "./conformance/check.js";
import { addConformanceSubroutines } from "./conformance/gateway.js";
import { FaultRelay } from "./fault-relay.js";
import { controllerFor, startGateway, tempDir, within } from "./helpers.js";
import { RawSession } from "./raw-session.js";

const PYTHON = "/usr/bin/python3";
const ROOT = new URL("..", import.meta.url).pathname;
const SCENARIOS = join(ROOT, "clients/python/tests/scenarios.py");
const CONFORMANCE = join(ROOT, "clients/python/tests/conformance.py");
const CASES = join(ROOT, "test/conformance/cases.json");

const probe = spawnSync(PYTHON, ["-c", "import zmq, cbor2"], { encoding: "utf8" });
const pythonReady = probe.status === 0;
if (!pythonReady) {
  console.warn(
    `python-client tests skipped: ${PYTHON} cannot import zmq and cbor2 (apt-get install python3-zmq python3-cbor2): ${probe.stderr || probe.error}`,
  );
}

interface PythonRun {
  /** Every JSON line printed, in order. */
  readonly lines: Array<Record<string, unknown>>;
  /** Resolves with the lines once the process exits 0; rejects with its stderr otherwise. */
  readonly done: Promise<Array<Record<string, unknown>>>;
  /** Resolves with the next printed line. */
  next(): Promise<Record<string, unknown>>;
}

/** Runs a Python script; killed when the test ends. */
function python(script: string, args: string[]): PythonRun {
  const child = spawn(PYTHON, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  onTestFinished(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<(line: Record<string, unknown>) => void> = [];
  let read = 0;
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout }).on("line", (text) => {
    const line = JSON.parse(text) as Record<string, unknown>;
    lines.push(line);
    waiters.shift()?.(line);
  });
  const done = new Promise<Array<Record<string, unknown>>>((resolve, reject) => {
    child.on("close", (code) => (code === 0 ? resolve(lines) : reject(new Error(`python exited ${code}: ${stderr}`))));
  });
  done.catch(() => undefined);
  return {
    lines,
    done,
    next: () => {
      if (read < lines.length) return Promise.resolve(lines[read++]!);
      return new Promise((resolve) => waiters.push((line) => (read++, resolve(line))));
    },
  };
}

function toWire(v: Json): unknown {
  if (Array.isArray(v)) return v.map(toWire);
  if (v !== null && typeof v === "object") {
    if (Object.keys(v).length === 1 && typeof v["$bytes"] === "string") return Buffer.from(v["$bytes"], "hex");
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x)]));
  }
  return v;
}

function toJson(v: unknown): Json {
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString("hex") };
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  return v as Json;
}

function errorOutcome(err: unknown): Partial<Outcome> {
  if (!(err instanceof SwarmnetError)) throw err;
  return { error: err.code, message: err.message, ...(err instanceof RemoteError ? { remoteName: err.remoteName ?? null } : {}) };
}

/** The Node client's outcome for one case (the same fields the Python runner prints). */
async function runNodeCase(client: Client, endpoint: string, c: Case): Promise<Outcome> {
  const args = toWire((c["args"] as Json) ?? []) as unknown[];
  const kwargs = toWire((c["kwargs"] as Json) ?? {}) as Record<string, unknown>;
  if (c.kind === "call") {
    try {
      if (c["op"] === "ping") return { name: c.name, value: toJson(await client.ping(toWire(c["data"] as Json))) };
      if (c["op"] === "get")
        return { name: c.name, value: toJson(await client.getSubroutineBatch(c["subroutine"] as string, args, kwargs)) };
      return {
        name: c.name,
        value: toJson(await client.sendSubroutineBatch(c["subroutine"] as string, toWire(c["buffer"] as Json) as Uint8Array, args, kwargs)),
      };
    } catch (err) {
      return { name: c.name, ...errorOutcome(err) };
    }
  }
  if (c.kind === "stream") {
    const out = { name: c.name, count: 0, inOrder: true, bytes: 0, values: [] as Json[], aborted: false } as Outcome &
      Record<string, unknown>;
    const o = out as { count: number; inOrder: boolean; bytes: number; values: Json[]; aborted: boolean };
    try {
      const window = typeof c["window"] === "number" ? { window: c["window"] } : {};
      for await (const [ident, item] of client.stream(c["subroutine"] as string, args, kwargs, window)) {
        if (ident !== o.count) o.inOrder = false;
        o.count++;
        if (item instanceof Uint8Array) o.bytes += item.length;
        else o.values.push(toJson(item));
        if (c["abortAfter"] === o.count) {
          o.aborted = true;
          break;
        }
      }
    } catch (err) {
      Object.assign(out, errorOutcome(err));
    }
    return { ...out, pingAfter: (await client.ping("after")) === "after" };
  }
  return { name: c.name, reply: await rawExchange(endpoint, c) };
}

/** Sends one hand-made envelope (after a hello, behind a delivery header, when `session`) and returns the answer. */
async function rawExchange(endpoint: string, c: Case): Promise<Record<string, Json>> {
  const send = c["send"] as Record<string, Json>;
  const envelope = Buffer.from(encode(toWire(send)));
  if (c["session"] === true) {
    const raw = new RawSession(endpoint);
    try {
      await within(raw.request([Buffer.from(encode({ type: "hello", id: 0, v: 1 }))]), 5_000, "welcome");
      return toJson(await within(raw.request([envelope]), 5_000, `answer to ${c.name}`)) as Record<string, Json>;
    } finally {
      raw.close();
    }
  }
  const socket = new Dealer({ linger: 0 });
  socket.connect(endpoint);
  try {
    await socket.send(envelope);
    for (;;) {
      const frames = await within(socket.receive(), 5_000, `answer to ${c.name}`);
      const first = frames[0]!;
      if (isHeader(first) && headerKind(first) !== LinkKind.DATA) continue;
      const reply = decode(isHeader(first) ? afterHeader(first, false) : first) as Record<string, unknown>;
      if (reply["id"] === send["id"] || reply["type"] === "refused") return toJson(reply) as Record<string, Json>;
    }
  } finally {
    socket.close();
  }
}

async function conformanceGateway(): Promise<Gateway> {
  const gw = await startGateway({ maxPoolSize: 64 });
  addConformanceSubroutines(gw);
  return gw;
}

const cases = (JSON.parse(await readFile(CASES, "utf8")) as { cases: Case[] }).cases;

describe("conformance cases (test/conformance/cases.json)", () => {
  it("the Node client meets every case", async () => {
    const gw = await conformanceGateway();
    const client = await controllerFor(gw).getClient();
    for (const c of cases) checkOutcome(c, await runNodeCase(client, gw.endpoint, c), "node");
  });

  it.skipIf(!pythonReady)(
    "the Python client meets every case",
    async () => {
      const gw = await conformanceGateway();
      const lines = await within(python(CONFORMANCE, [gw.endpoint, CASES]).done, 60_000, "the Python conformance run");
      expect(lines.map((l) => l["name"])).toEqual(cases.map((c) => c.name));
      for (const c of cases) checkOutcome(c, lines.find((l) => l["name"] === c.name) as unknown as Outcome, "python");
    },
    90_000,
  );
});

describe.skipIf(!pythonReady)("Python client against a live gateway", () => {
  it("a 100,000-item stream arrives whole and in order", async () => {
    const gw = await conformanceGateway();
    const [result] = await within(python(SCENARIOS, ["stream-count", gw.endpoint, "100000"]).done, 60_000, "the stream");
    expect(result).toMatchObject({ count: 100_000, inOrder: true, bad: 0, afterBreak: "after break", keptAborted: true });
  }, 90_000);

  it("files: a folder download (nested, empty, 3 MB), uploads with verify and resumed from a .part, typed errors for a missing folder and an escape", async () => {
    const root = await tempDir();
    const downloads = await tempDir();
    const uploads = await tempDir();
    await mkdir(join(root, "data/sub"), { recursive: true });
    const big = createHash("sha256").update("seed").digest();
    const bigFile = Buffer.concat(
      Array.from({ length: 100_000 }, (_, i) => Buffer.from([...big.subarray(0, 29), i & 255, (i >> 8) & 255, 7])),
    );
    await writeFile(join(root, "data/big.bin"), bigFile);
    await writeFile(join(root, "data/sub/a.txt"), "reading 1\n");
    await writeFile(join(root, "data/empty"), "");
    // An upload interrupted earlier left 1 MB (marked 0xEE, so a resend would show) on the gateway.
    await mkdir(join(uploads, "resumed"));
    await writeFile(join(uploads, "resumed/big.bin.part"), Buffer.alloc(1_000_000, 0xee));
    const gw = await startGateway({ fileRoots: [root], downloadDir: uploads });
    const [result] = await within(
      python(SCENARIOS, ["files", gw.endpoint, downloads, "data", join(root, "data/big.bin"), join(root, "data/sub/a.txt")]).done,
      60_000,
      "the transfers",
    );
    const sha = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");
    expect(result).toMatchObject({
      digests: { "big.bin": sha(bigFile), "sub/a.txt": sha("reading 1\n"), empty: sha("") },
      uploaded: 2,
      resumed: 1,
      missing: ErrorCode.FILE_NOT_FOUND,
      escape: ErrorCode.PATH_NOT_ALLOWED,
      ping: 1,
    });
    expect(sha(await readFile(join(uploads, "from-python/big.bin")))).toBe(sha(bigFile));
    const resumed = await readFile(join(uploads, "resumed/big.bin"));
    // A bare .part (no journal naming this source) is never spliced in: the gateway asks for every byte (issue 13).
    expect(sha(resumed)).toBe(sha(bigFile));
  });

  it("a download resumes from the bytes a .part of the same source already holds", async () => {
    const root = await tempDir();
    const downloads = await tempDir();
    const content = Buffer.from(Array.from({ length: 2_000_000 }, (_, i) => (i * 7) & 255));
    await writeFile(join(root, "log.bin"), content);
    // An interrupted run left 1.5 MB; they are marked (0xEE) so that a refetch would show.
    await writeFile(join(downloads, "log.bin.part"), Buffer.alloc(1_500_000, 0xee));
    await writeFile(join(downloads, "log.bin.part.src"), JSON.stringify({ size: content.length, path: "log.bin" }));
    const gw = await startGateway({ fileRoots: [root] });
    const [result] = await within(python(SCENARIOS, ["resume-download", gw.endpoint, downloads, "log.bin"]).done, 30_000, "the download");
    expect(result).toMatchObject({ part: false });
    const got = await readFile(join(downloads, "log.bin"));
    expect(got.length).toBe(content.length);
    expect(got.subarray(0, 1_500_000).every((b) => b === 0xee)).toBe(true);
    expect(got.subarray(1_500_000).equals(content.subarray(1_500_000))).toBe(true);
  });

  it("CURVE: an authorized key gets a session; an unknown key and a plain client do not", async () => {
    const server = generateKeyPair();
    const client = generateKeyPair();
    const stranger = generateKeyPair();
    const gw = await startGateway({ curve: { ...server, authorizedKeys: [client.publicKey] } });
    gw.addSubroutine("echo", (x: unknown) => x);
    const [result] = await within(
      python(SCENARIOS, [
        "curve",
        gw.endpoint,
        client.publicKey,
        client.secretKey,
        server.publicKey,
        stranger.publicKey,
        stranger.secretKey,
      ]).done,
      30_000,
      "the CURVE run",
    );
    expect(result).toMatchObject({ pong: "through curve", refused: ErrorCode.CONNECTION, plain: ErrorCode.TIMEOUT });
  });

  it("a wrong protocol version is VersionMismatchError, a full pool PoolFullError, a closed client ClosedError, an oversize request MessageTooLargeError", async () => {
    const gw = await startGateway({ maxPoolSize: 1 });
    const [result] = await within(python(SCENARIOS, ["errors", gw.endpoint]).done, 30_000, "the error run");
    expect(result).toMatchObject({
      version: ErrorCode.VERSION_MISMATCH,
      full: ErrorCode.POOL_FULL,
      closed: ErrorCode.CLOSED,
      again: "ok",
      tooLarge: "SWARMNET_MESSAGE_TOO_LARGE",
      afterTooLarge: "fine",
    });
  });

  it("a call longer than the lease, and user code between calls, keep the session (heartbeats on the I/O thread)", async () => {
    const gw = await startGateway({ livenessMs: 600 });
    gw.addSubroutine("slow", (ms: number) => new Promise((resolve) => setTimeout(() => resolve(`slept ${ms}`), ms)));
    const [result] = await within(python(SCENARIOS, ["long-call", gw.endpoint, "1500"]).done, 30_000, "the long call");
    expect(result).toMatchObject({ value: "slept 1500", ping: "still here" });
    expect(gw.snapshot().supervisor.stats.expired).toBe(0);
  });

  it("a gateway that stops fails the waiting call with SessionEndedError (reason stopped)", async () => {
    const gw = await startGateway();
    let started!: () => void;
    const callStarted = new Promise<void>((resolve) => (started = resolve));
    gw.addSubroutine("slow", (ms: number) => {
      started();
      return new Promise((resolve) => setTimeout(resolve, ms).unref());
    });
    const run = python(SCENARIOS, ["session-end", gw.endpoint]);
    await within(callStarted, 15_000, "the slow call to start");
    await gw.stop();
    const lines = await within(run.done, 15_000, "the python run");
    expect(lines[0]).toMatchObject({ error: ErrorCode.SESSION_ENDED, reason: "stopped" });
  });

  it("a stream over five link resets mid-flow: every item once, in order, and the session resumes", async () => {
    const gw = await conformanceGateway();
    const relay = new FaultRelay({ targetPort: gw.port });
    await relay.start();
    onTestFinished(() => relay.close());
    // Throttled, so that every reset finds items in flight (the relay drops what it holds).
    relay.throttle(200_000);
    const run = python(SCENARIOS, ["stream-resets", relay.endpoint, "30000", "5000"]);
    for (let i = 0; i < 5; i++) {
      expect(await within(run.next(), 30_000, `progress line ${i + 1}`)).toMatchObject({ progress: (i + 1) * 5000 });
      relay.reset();
    }
    const lines = await within(run.done, 60_000, "the stream");
    expect(lines.at(-1)).toMatchObject({ count: 30_000, inOrder: true, ping: "after" });
    expect(lines.at(-1)!["reconnects"]).toBeGreaterThanOrEqual(1);
    expect(lines.at(-1)!["resumes"]).toBeGreaterThanOrEqual(1);
    expect(gw.deliveryStats().resent).toBeGreaterThan(0);
  }, 90_000);

  it("README: the Pi-side Python script streams readings to the Node gateway snippet, as both stand", async () => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### A Pi streams sensor readings"));
    const ts = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    const py = /```python\n([\s\S]*?)```/.exec(section)?.[1];
    expect(ts).toBeDefined();
    expect(py).toBeDefined();
    const dir = await tempDir("swarmnet-readme-py-");
    await writeFile(join(dir, "gateway.mts"), ts!.replace(`from "swarmnet"`, `from ${JSON.stringify(join(ROOT, "runtime", "index.ts"))}`));
    await writeFile(join(dir, "pi.py"), py!);
    const gateway = spawn(process.execPath, ["--import", "tsx", join(dir, "gateway.mts")], {
      cwd: ROOT,
      env: { ...process.env, PORT: "0" },
    });
    onTestFinished(() => {
      if (gateway.exitCode === null) gateway.kill("SIGKILL");
    });
    const out: string[] = [];
    const lines = createInterface({ input: gateway.stdout });
    const listening = new Promise<string>((resolve) =>
      lines.on("line", (line) => (out.push(line), /port (\d+)/.test(line) && resolve(/port (\d+)/.exec(line)![1]!))),
    );
    const exited = new Promise<number | null>((resolve) => gateway.on("close", resolve));
    const port = await within(listening, 30_000, "the gateway snippet to listen");
    const pi = spawn(PYTHON, [join(dir, "pi.py")], {
      env: { ...process.env, GATEWAY_PORT: port, PYTHONPATH: join(ROOT, "clients/python") },
      stdio: ["ignore", "pipe", "inherit"],
    });
    onTestFinished(() => {
      if (pi.exitCode === null) pi.kill("SIGKILL");
    });
    let piOut = "";
    pi.stdout.on("data", (d: Buffer) => (piOut += d.toString()));
    await within(new Promise((resolve) => pi.on("close", resolve)), 30_000, "the Pi script");
    expect(await within(exited, 15_000, "the gateway snippet to end")).toBe(0);
    expect(piOut).toContain("sent 100 readings");
    expect(out).toContain("stored 100 readings from the Pi");
  }, 60_000);
});
