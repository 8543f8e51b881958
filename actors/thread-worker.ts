/**
 * The worker-thread side of `gateway.addSubroutines(moduleUrl, { threads })`:
 * piscina runs this module's default export once per task in a pool thread.
 * It imports the user's module (once per thread) and runs one of its exports:
 *
 * - `describe`: the module's exported functions and whether each is a generator;
 * - `call`: a batch call; a subroutine's own throw comes back as `{ ok: false }`
 *   (a RemoteError for the caller), never as a task rejection, so a rejected
 *   task always means the thread itself failed (a handler crash);
 * - `stream`: a generator driven over a MessagePort. The main thread asks for
 *   at most the items and bytes the client's credit allows (`pull`), the
 *   thread answers with one batch (byte items packed into one transferred
 *   buffer), and `return` runs the generator's `finally` here.
 *
 * Plain data only: this module runs inside a worker and imports nothing of
 * swarmnet's but the pure protocol/thrown.ts, so it loads the same from source
 * (through tsx) and from dist/.
 */
import { workerData, type MessagePort } from "node:worker_threads";
import { move } from "piscina";
// Pure (node:util only), so it loads in a worker from source and from dist/ alike.
import { describeThrown as describeSafely, isInstance } from "../protocol/thrown.js";

export type ThreadTask =
  | { op: "describe" }
  | { op: "call"; name: string; args: unknown[]; kwargs: Record<string, unknown> }
  | { op: "stream"; name: string; args: unknown[]; kwargs: Record<string, unknown>; port: MessagePort };

/** An export as the main thread registers it. */
export interface ThreadExport {
  name: string;
  kind: "function" | "generator";
}

/** What a subroutine threw, as plain data that crosses threads. */
export interface ThrownInfo {
  name: string;
  message: string;
  stack?: string;
}

/** A batch call's outcome; bytes that own their buffer come back bare (moved, not copied). */
export type ThreadCallResult = Uint8Array | { ok: true; value: unknown } | { ok: false; error: ThrownInfo; bad?: true };

/** Main thread -> worker, on a stream's port. */
export type StreamCommand = { type: "pull"; items: number; bytes: number } | { type: "return" };

/**
 * Worker -> main thread, on a stream's port. `idents[i]` pairs with
 * `lengths[i]`: a length >= 0 is that many bytes of `packed` (in order), -1 is
 * `values[i]` (any structured-clonable value; an end marker travels as such).
 */
export type StreamReply =
  | { type: "items"; idents: unknown[]; lengths: number[]; values: unknown[]; packed: Uint8Array | undefined; done: boolean }
  /** The generator threw (`bad`: it yielded something that cannot leave the thread). Items before it came first. */
  | { type: "error"; error: ThrownInfo; bad?: true }
  | { type: "returned" };

type AnyFn = (...args: unknown[]) => unknown;
type AnyIterator = Iterator<unknown, unknown, undefined> | AsyncIterator<unknown, unknown, undefined>;

const moduleUrl = (workerData as { moduleUrl?: string } | undefined)?.moduleUrl;
let loaded: Promise<Record<string, unknown>> | undefined;

async function load(url: string): Promise<Record<string, unknown>> {
  // ESM loader hooks do not reach worker threads on Node 20, so a TypeScript module gets tsx's
  // hooks registered here, in the worker (tsx must be installed where the module can find it).
  if (/\.[mc]?ts$/.test(new URL(url).pathname)) {
    const api = (await import("tsx/esm/api" as string).catch(() => undefined)) as { register?: () => unknown } | undefined;
    if (typeof api?.register !== "function") throw new Error(`${url} is TypeScript: install tsx, or pass the compiled .js module`);
    api.register();
  }
  return (await import(url)) as Record<string, unknown>;
}

function userModule(): Promise<Record<string, unknown>> {
  if (moduleUrl === undefined) throw new Error("swarmnet thread worker started without a module");
  loaded ??= load(moduleUrl);
  return loaded;
}

function kindOf(fn: AnyFn): ThreadExport["kind"] {
  const ctor = (fn as { constructor?: { name?: string } }).constructor?.name;
  return ctor === "GeneratorFunction" || ctor === "AsyncGeneratorFunction" ? "generator" : "function";
}

/**
 * Any thrown value as name + message, never throwing (a `message` getter that
 * throws, a revoked Proxy): the pure protocol/thrown.ts reads it; a value that
 * is not an Error is named "Error".
 */
export function describeThrown(error: unknown): ThrownInfo {
  const { message, name } = describeSafely(error);
  let stack: unknown;
  try {
    stack = isInstance(error, Error) ? error.stack : undefined;
  } catch {
    stack = undefined;
  }
  return typeof stack === "string" ? { name: name ?? "Error", message, stack } : { name: name ?? "Error", message };
}

/** The module's functions by name: named exports, and the function members of a default-exported object. */
function functionsOf(mod: Record<string, unknown>): Map<string, AnyFn> {
  const found = new Map<string, AnyFn>();
  const fallback = mod["default"];
  if (fallback !== null && typeof fallback === "object") {
    for (const [name, value] of Object.entries(fallback)) if (typeof value === "function") found.set(name, value as AnyFn);
  }
  for (const [name, value] of Object.entries(mod)) if (name !== "default" && typeof value === "function") found.set(name, value as AnyFn);
  return found;
}

let functions: Map<string, AnyFn> | undefined;

async function lookup(name: string): Promise<AnyFn> {
  functions ??= functionsOf(await userModule());
  const fn = functions.get(name);
  if (fn === undefined) throw new Error(`the thread module exports no function '${name}'`);
  return fn;
}

/** A Uint8Array that owns its whole buffer can be moved instead of copied. */
function ownsBuffer(value: Uint8Array): boolean {
  return value.byteOffset === 0 && value.byteLength === value.buffer.byteLength && !(value.buffer instanceof SharedArrayBuffer);
}

async function call(task: Extract<ThreadTask, { op: "call" }>): Promise<ThreadCallResult | ReturnType<typeof move>> {
  let value: unknown;
  try {
    const fn = await lookup(task.name);
    value = await fn(...task.args, task.kwargs);
  } catch (error) {
    return { ok: false, error: describeThrown(error) };
  }
  if (value instanceof Uint8Array && ownsBuffer(value)) {
    // piscina moves a marked top-level result instead of copying it.
    return move(value);
  }
  try {
    // A value the thread boundary cannot carry (a function inside an object) is the subroutine's fault.
    structuredClone(value);
  } catch (error) {
    return {
      ok: false,
      bad: true,
      error: { name: "TypeError", message: `result of '${task.name}' cannot leave its worker thread: ${describeThrown(error).message}` },
    };
  }
  return { ok: true, value };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function";
}

function iteratorOf(result: unknown): AnyIterator | undefined {
  if (result === null || typeof result !== "object") return undefined;
  const asyncIt = (result as { [Symbol.asyncIterator]?: () => AnyIterator })[Symbol.asyncIterator];
  if (typeof asyncIt === "function") return asyncIt.call(result);
  const it = (result as { [Symbol.iterator]?: () => AnyIterator })[Symbol.iterator];
  if (typeof it === "function") return it.call(result);
  return undefined;
}

/** Runs one stream: pulls only what the main thread asked for, batch by batch. Resolves when the generator is done. */
function stream(task: Extract<ThreadTask, { op: "stream" }>): Promise<void> {
  const port = task.port;
  return new Promise<void>((resolve) => {
    let iterator: AnyIterator | undefined;
    let finished = false;
    let busy: Promise<void> = Promise.resolve();
    const finish = (): void => {
      if (finished) return;
      finished = true;
      port.close();
      resolve();
    };
    const fail = (error: unknown, bad = false): void => {
      port.postMessage(
        bad
          ? { type: "error", error: describeThrown(error), bad: true }
          : ({ type: "error", error: describeThrown(error) } satisfies StreamReply),
      );
      finish();
    };
    const pull = async (items: number, bytes: number): Promise<void> => {
      if (finished || iterator === undefined) return;
      const idents: unknown[] = [];
      const lengths: number[] = [];
      const values: unknown[] = [];
      const parts: Uint8Array[] = [];
      let size = 0;
      let done = false;
      let failure: { error: unknown; bad: boolean } | undefined;
      try {
        while (idents.length < items && size < bytes) {
          let step = iterator.next();
          if (isThenable(step)) step = await step;
          const result = step as IteratorResult<unknown>;
          if (result.done) {
            done = true;
            break;
          }
          const value = result.value;
          const pair = Array.isArray(value) ? value : undefined;
          const buffer: unknown = pair?.[1];
          if (pair !== undefined && buffer instanceof Uint8Array) {
            idents.push(pair[0]);
            lengths.push(buffer.length);
            values.push(undefined);
            parts.push(buffer);
            size += buffer.length;
          } else {
            // Values, end markers and malformed items go as they are: the gateway thread judges them.
            try {
              structuredClone(value);
            } catch (error) {
              failure = {
                error: new TypeError(
                  `stream '${task.name}' yielded an item that cannot leave its worker thread: ${describeThrown(error).message}`,
                ),
                bad: true,
              };
              break;
            }
            idents.push(pair === undefined ? undefined : pair[0]);
            lengths.push(-1);
            values.push(value);
            if (pair === undefined || typeof pair[0] !== "number" || pair[0] < 0 || buffer === null || buffer === undefined) break;
          }
        }
      } catch (error) {
        failure = { error, bad: false };
      }
      let packed: Uint8Array | undefined;
      if (parts.length > 0) {
        packed = new Uint8Array(size);
        let at = 0;
        for (const part of parts) {
          packed.set(part, at);
          at += part.length;
        }
      }
      // Items yielded before a throw are delivered, then the error, as on the event loop.
      if (idents.length > 0 || failure === undefined) {
        const reply: StreamReply = { type: "items", idents, lengths, values, packed, done };
        port.postMessage(reply, packed === undefined ? [] : [packed.buffer as ArrayBuffer]);
      }
      if (failure !== undefined) fail(failure.error, failure.bad);
      else if (done) finish();
    };
    // Commands wait for the module and the generator: a pull that comes first is served after.
    busy = lookup(task.name)
      .then((fn) => {
        const result = fn(...task.args, task.kwargs);
        iterator = iteratorOf(result);
        if (iterator === undefined) fail(new TypeError(`subroutine '${task.name}' is not a generator: call it with getSubroutineBatch`));
      })
      .catch(fail);
    port.on("message", (command: StreamCommand) => {
      if (command.type === "pull") {
        busy = busy.then(() => pull(command.items, command.bytes));
      } else {
        busy = busy.then(async () => {
          if (finished) return;
          try {
            await iterator?.return?.();
          } catch {
            // A throw from the generator's cleanup changes nothing for the client.
          }
          port.postMessage({ type: "returned" } satisfies StreamReply);
          finish();
        });
      }
    });
  });
}

/**
 * An error thrown outside any task's own code (a timer or a promise a finished call left
 * behind) must not be blamed on whichever call runs next: the worker notes it, finishes
 * what it is running, and then exits, so piscina replaces it and no call fails for it.
 */
let tainted: unknown;
let running = 0;
const taint = (error: unknown): void => {
  if (tainted === undefined) {
    tainted = error;
    process.stderr.write(
      `swarmnet: a worker thread caught an error outside any call and will be replaced: ${describeThrown(error).message}\n`,
    );
  }
  if (running === 0) setImmediate(retire);
};
/** Exits between tasks (code 70, which the gateway thread knows): piscina starts a fresh worker. */
const retire = (): void => {
  if (running === 0) process.exit(70);
};
process.on("uncaughtException", taint);
process.on("unhandledRejection", taint);

/** piscina's task entry point. */
export default async function run(task: ThreadTask): Promise<unknown> {
  running++;
  try {
    return await dispatch(task);
  } finally {
    // piscina posts this task's answer before a setImmediate runs.
    if (--running === 0 && tainted !== undefined) setImmediate(retire);
  }
}

async function dispatch(task: ThreadTask): Promise<unknown> {
  switch (task.op) {
    case "describe": {
      functions ??= functionsOf(await userModule());
      return [...functions].map(([name, fn]): ThreadExport => ({ name, kind: kindOf(fn) }));
    }
    case "call":
      return call(task);
    case "stream":
      return stream(task);
  }
}
