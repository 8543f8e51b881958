/**
 * Subroutines on worker threads (pynetwork ran every handler on its own
 * thread): `gateway.addSubroutines(moduleUrl, { threads })` loads a module in
 * a piscina pool and registers each exported function as a subroutine whose
 * body runs off the gateway's event loop. Handlers stay on the main thread
 * and keep their machines; only the subroutine's work hops.
 *
 * - A batch call is one piscina task. The batch-send buffer is moved to the
 *   worker (transferred, not copied) when it owns its memory; a bytes result
 *   is moved back the same way.
 * - A stream is one task that keeps a MessagePort open: the gateway thread
 *   asks for at most what the client's credit allows (`CREDIT_HINT`, called
 *   by the StreamJob before each pull), the worker pulls its generator that
 *   far and answers with one batch. `return()` runs the generator's `finally`
 *   in the worker; a worker that does not answer within
 *   `DEFAULT_THREAD_RETURN_MS` is terminated and replaced.
 * - A task that rejects (the worker threw outside a subroutine, exited or
 *   was terminated) is a `ThreadCrash`: the handler treats it as its own
 *   crash, so the supervisor's restart budget applies and the caller gets
 *   `HandlerCrashedError`. A subroutine's own throw stays a `RemoteError`.
 * - A call whose deadline passed (`rpc.cancel`) aborts its task: piscina
 *   terminates that worker and starts a new one, so the work does not run on
 *   unseen.
 * - Tasks beyond the pool's threads wait in piscina's FIFO queue: handlers
 *   get threads first come, first served.
 */
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { EventLoopUtilization } from "node:perf_hooks";
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { Piscina } from "piscina";
import { InvalidArgumentError, describeThrown, type Kwargs } from "../protocol/index.js";
import { CREDIT_HINT, INTERRUPT } from "./stream-job.js";
import { BadResult, ThreadCrash, type Subroutine, type SubroutineInvoker } from "./subroutines.js";
import type { StreamCommand, StreamReply, ThreadCallResult, ThreadExport, ThreadTask, ThrownInfo } from "./thread-worker.js";

/** How long a worker-side generator gets to run its `finally` after an abort before its thread is replaced, in ms. */
export const DEFAULT_THREAD_RETURN_MS = 2_000;
/** Items one stream batch from a worker carries at most. */
const THREAD_BATCH_ITEMS = 256;
/** Bytes one stream batch from a worker carries at most (the last item may overshoot). */
const THREAD_BATCH_BYTES = 256 * 1024;

export interface ThreadPoolOptions {
  /** Worker threads in the pool. @default os.availableParallelism() */
  threads?: number | undefined;
  /** Only these exports become subroutines. @default every exported function */
  only?: readonly string[] | undefined;
}

/** One worker of a pool, as `gateway.snapshot()` shows it. */
export interface ThreadWorkerInspection {
  readonly threadId: number;
  /** Share of the last interval the worker's event loop was busy, 0..1 (Node's eventLoopUtilization). */
  readonly utilization: number;
}

/** A pool of worker threads running one module's subroutines. */
export interface ThreadPoolInspection {
  readonly module: string;
  readonly threads: number;
  readonly subroutines: readonly string[];
  /** Tasks waiting for a free thread. */
  readonly queued: number;
  /** Tasks running now (batch calls and open streams). */
  readonly running: number;
  readonly completed: number;
  /** piscina's utilization of the whole pool since it started, 0..1. */
  readonly utilization: number;
  readonly workers: readonly ThreadWorkerInspection[];
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}

/**
 * The exit code of a worker that retired itself between tasks after an error thrown
 * outside any call (see thread-worker.ts): a task sent to it at that moment never ran,
 * so it is sent again once, to another worker.
 */
const RETIRED_EXIT_CODE = 70;

function isRetired(error: unknown): boolean {
  return error instanceof Error && error.message.includes(`exited with code: ${RETIRED_EXIT_CODE}`);
}

function crash(error: unknown, moduleName: string): ThreadCrash {
  const { message } = describeThrown(error);
  return new ThreadCrash(`worker thread of ${moduleName} failed: ${message}`, { cause: error });
}

/** A subroutine's own throw, rebuilt on the gateway thread with its name and message. */
function rethrown(info: ThrownInfo, bad = false): Error {
  if (bad) return new BadResult(info.message);
  const error = new Error(info.message);
  error.name = info.name;
  if (info.stack !== undefined) error.stack = info.stack;
  return error;
}

/** Whether `view` is the whole of a plain ArrayBuffer, so it can be moved to a worker. */
function movable(view: Uint8Array): boolean {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer;
}

function workerFile(): { filename: string; execArgv: string[] | undefined } {
  // From dist/ the worker is plain JavaScript; from a checkout (tsx, vitest) it is TypeScript,
  // which a worker thread can only load through tsx's loader.
  const fromSource = new URL(import.meta.url).pathname.endsWith(".ts");
  const url = new URL(fromSource ? "./thread-worker.ts" : "./thread-worker.js", import.meta.url);
  const hasLoader = process.execArgv.some((arg) => arg.includes("tsx"));
  if (!fromSource || hasLoader) return { filename: fileURLToPath(url), execArgv: undefined };
  // tsx's loader, found from this file (not from the cwd, which may be anywhere); its require hook is
  // enough for piscina to load the worker, which tries require() first.
  const loader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  return { filename: fileURLToPath(url), execArgv: [...process.execArgv, "--import", loader] };
}

export class SubroutineThreadPool {
  readonly moduleUrl: string;
  readonly threads: number;
  readonly #pool: Piscina;
  #subroutines: ThreadExport[] = [];
  /** Tasks handed to piscina and not settled: running on a thread or queued for one. */
  #inflight = 0;
  readonly #lastUtilization = new Map<number, EventLoopUtilization>();

  private constructor(moduleUrl: string, threads: number) {
    this.moduleUrl = moduleUrl;
    this.threads = threads;
    const { filename, execArgv } = workerFile();
    this.#pool = new Piscina({
      filename,
      minThreads: threads,
      maxThreads: threads,
      // A thread per task: a CPU-bound subroutine owns its thread, as a pynetwork handler did.
      concurrentTasksPerWorker: 1,
      // Idle workers wait in their event loop, not in Atomics.wait, so their utilization reads true.
      atomics: "disabled",
      idleTimeout: Number.POSITIVE_INFINITY,
      workerData: { moduleUrl },
      ...(execArgv === undefined ? {} : { execArgv }),
    });
    // A worker that dies between tasks must not become an unhandled 'error' on the gateway.
    this.#pool.on("error", () => undefined);
  }

  /**
   * Starts a pool for `moduleUrl` and reads its exports.
   * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) for a bad thread count, a module that cannot be
   *   loaded, or `only` naming an export that is not a function.
   */
  static async open(module: string | URL, options: ThreadPoolOptions = {}): Promise<SubroutineThreadPool> {
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw new InvalidArgumentError(`addSubroutines: option 'threads' must be an integer 1..256, got ${String(options.threads)}`);
    }
    const only = options.only;
    if (only !== undefined && (!Array.isArray(only) || only.length === 0 || only.some((n) => typeof n !== "string"))) {
      throw new InvalidArgumentError(
        `addSubroutines: option 'only' must be a non-empty array of export names, got ${JSON.stringify(only)}`,
      );
    }
    if (typeof module !== "string" && !(module instanceof URL)) {
      throw new InvalidArgumentError(`addSubroutines: module must be a path or a URL, got ${typeof module}`);
    }
    const moduleUrl = typeof module === "string" && !/^[a-z]+:/i.test(module) ? pathToFileURL(module).href : String(module);
    const pool = new SubroutineThreadPool(moduleUrl, threads);
    let exports: ThreadExport[];
    try {
      exports = (await pool.#pool.run({ op: "describe" } satisfies ThreadTask)) as ThreadExport[];
    } catch (error) {
      await pool.close();
      throw new InvalidArgumentError(`addSubroutines: cannot load ${moduleUrl} in a worker thread: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (exports.length === 0) {
      await pool.close();
      throw new InvalidArgumentError(`addSubroutines: ${moduleUrl} exports no functions`);
    }
    if (only !== undefined) {
      const missing = only.filter((name) => !exports.some((e) => e.name === name));
      if (missing.length > 0) {
        await pool.close();
        throw new InvalidArgumentError(`addSubroutines: ${moduleUrl} exports no function named ${missing.map((m) => `'${m}'`).join(", ")}`);
      }
      exports = exports.filter((e) => only.includes(e.name));
    }
    pool.#subroutines = exports;
    return pool;
  }

  /** The module's exported functions, each with whether it is a generator (a stream). */
  get subroutines(): readonly ThreadExport[] {
    return this.#subroutines;
  }

  /** The body registered for `name`: a batch call or a stream that runs in this pool. */
  invoker(entry: ThreadExport): { fn: Subroutine; invoke: SubroutineInvoker } {
    const invoke: SubroutineInvoker =
      entry.kind === "generator"
        ? (args, kwargs) => this.#stream(entry.name, args, kwargs)
        : (args, kwargs, signal) => this.#call(entry.name, args, kwargs, signal);
    // `fn` is what a direct caller (tests, the registry's kind check) sees; its kind mirrors the export's.
    const fn: Subroutine = entry.kind === "generator" ? async function* threaded(): AsyncGenerator<never> {} : () => undefined;
    return { fn, invoke };
  }

  async #call(name: string, args: readonly unknown[], kwargs: Kwargs, signal: AbortSignal | undefined): Promise<unknown> {
    const transferList: ArrayBuffer[] = [];
    const buffer = kwargs.buffer;
    if (buffer instanceof Uint8Array && movable(buffer)) transferList.push(buffer.buffer as ArrayBuffer);
    const task: ThreadTask = { op: "call", name, args: [...args], kwargs: { ...kwargs } };
    this.#inflight++;
    let result: ThreadCallResult;
    try {
      const run = (): Promise<ThreadCallResult> =>
        this.#pool.run(task, { transferList, ...(signal ? { signal } : {}) }) as Promise<ThreadCallResult>;
      result = await run().catch((error: unknown) => {
        // A moved buffer went with the task that never ran: a retry cannot send it again.
        if (isRetired(error) && transferList.length === 0) return run();
        throw error;
      });
    } catch (error) {
      if (isAbort(error)) throw error;
      throw crash(error, this.moduleUrl);
    } finally {
      this.#inflight--;
    }
    if (result instanceof Uint8Array) return result;
    if (result.ok) return result.value;
    throw rethrown(result.error, result.bad === true);
  }

  #stream(name: string, args: readonly unknown[], kwargs: Kwargs): ThreadStream {
    const abort = new AbortController();
    const open = (): { port: MessagePort; task: Promise<unknown> } => {
      const channel = new MessageChannel();
      const task: ThreadTask = { op: "stream", name, args: [...args], kwargs: { ...kwargs }, port: channel.port2 };
      this.#inflight++;
      const done = this.#pool.run(task, { transferList: [channel.port2], signal: abort.signal }).finally(() => {
        this.#inflight--;
      });
      return { port: channel.port1, task: done };
    };
    return new ThreadStream(open, abort, this.moduleUrl);
  }

  inspect(): ThreadPoolInspection {
    const workers: ThreadWorkerInspection[] = [];
    for (const worker of this.#pool.threads) {
      const perf = worker.performance;
      if (perf === undefined || worker.threadId < 0) continue;
      const last = this.#lastUtilization.get(worker.threadId);
      const now = perf.eventLoopUtilization();
      this.#lastUtilization.set(worker.threadId, now);
      const delta = last === undefined ? now : perf.eventLoopUtilization(now, last);
      const utilization = Number.isFinite(delta.utilization) ? Math.min(1, Math.max(0, delta.utilization)) : 0;
      workers.push({ threadId: worker.threadId, utilization });
    }
    return {
      module: this.moduleUrl,
      threads: this.threads,
      subroutines: this.#subroutines.map((s) => s.name),
      queued: this.#pool.queueSize,
      running: Math.max(0, this.#inflight - this.#pool.queueSize),
      completed: this.#pool.completed,
      utilization: this.#pool.utilization,
      workers,
    };
  }

  /** Ends the pool: running tasks are aborted and the threads terminated. */
  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}

/**
 * The gateway-thread end of a worker-side generator, an AsyncIterator the
 * StreamJob pulls like any other. It never asks the worker for more than the
 * credit the StreamJob reported, minus what it already holds or has asked for.
 */
class ThreadStream {
  #port!: MessagePort;
  #task!: Promise<unknown>;
  /** Whether the worker has answered yet (a retired worker's task that never ran is opened again once). */
  #answered = false;
  #reopened = false;
  readonly #abort: AbortController;
  #items: unknown[] = [];
  #head = 0;
  #heldBytes = 0;
  /** Items asked of the worker and not yet received (one request at a time). */
  #asked = 0;
  #creditItems = 1;
  #creditBytes = Number.POSITIVE_INFINITY;
  /** Items and bytes handed to the StreamJob since its last credit hint: already spent from that credit. */
  #takenItems = 0;
  #takenBytes = 0;
  #ended = false;
  #failure: Error | undefined;
  #waiter: { resolve: (r: IteratorResult<unknown>) => void; reject: (e: Error) => void } | undefined;
  #returned: (() => void) | undefined;
  /** The one `return` to the worker, however many ask for it (an interrupt, then the job's cleanup). */
  #returning: Promise<void> | undefined;

  constructor(open: () => { port: MessagePort; task: Promise<unknown> }, abort: AbortController, module: string) {
    this.#abort = abort;
    const attach = (): void => {
      const { port, task } = open();
      this.#port = port;
      this.#task = task;
      port.on("message", (reply: StreamReply) => {
        this.#answered = true;
        this.#onReply(reply);
      });
      // A normal end arrives as a message (the task may settle before the port's last message is read);
      // a rejected task is a crash, or the abort that `return()` used on a stuck generator.
      task.then(
        () => undefined,
        (error: unknown) => {
          if (isRetired(error) && !this.#answered && !this.#reopened && !this.#ended) {
            this.#reopened = true;
            port.close();
            attach();
            const asked = this.#asked;
            this.#asked = 0;
            if (asked > 0) this.#ask();
            return;
          }
          this.#finish(isAbort(error) ? undefined : crash(error, module));
        },
      );
    };
    attach();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Called by the StreamJob before each pull: what the client's credit still allows. */
  [CREDIT_HINT](items: number, bytes: number): void {
    this.#creditItems = items;
    this.#creditBytes = bytes;
    this.#takenItems = 0;
    this.#takenBytes = 0;
  }

  /**
   * An item already in hand is returned as is, not in a promise: the StreamJob then treats the
   * batch like a sync generator's items (no await per item); only a wait for the worker is a promise.
   */
  next(): Promise<IteratorResult<unknown>> | IteratorResult<unknown> {
    if (this.#head < this.#items.length) {
      const value = this.#take();
      this.#ask();
      return { done: false, value };
    }
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#ended) return Promise.resolve({ done: true, value: undefined });
    this.#ask();
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /**
   * The stream is being aborted or cancelled: a pending pull ends now (nothing more is
   * delivered) and the worker is asked to return, even if it is stuck in its generator.
   */
  [INTERRUPT](): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve({ done: true, value: undefined });
    void this.#return();
  }

  async return(): Promise<IteratorResult<unknown>> {
    await this.#return();
    this.#finish(undefined);
    return { done: true, value: undefined };
  }

  #return(): Promise<void> {
    if (this.#ended) return Promise.resolve();
    this.#returning ??= (async () => {
      const returned = new Promise<void>((resolve) => {
        this.#returned = resolve;
      });
      this.#port.postMessage({ type: "return" } satisfies StreamCommand);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, DEFAULT_THREAD_RETURN_MS);
        timer.unref();
      });
      await Promise.race([returned, late, this.#task.catch(() => undefined)]);
      clearTimeout(timer);
      // A generator stuck in its work does not get to keep the thread.
      if (!this.#ended) this.#abort.abort();
      this.#ended = true;
    })();
    return this.#returning;
  }

  #take(): unknown {
    const value = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    const buffer = Array.isArray(value) ? (value[1] as unknown) : undefined;
    this.#takenItems++;
    if (buffer instanceof Uint8Array) {
      this.#heldBytes -= buffer.length;
      this.#takenBytes += buffer.length;
    }
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    }
    return value;
  }

  /** Asks the worker for the next batch, within the credit the job reported. */
  #ask(): void {
    if (this.#ended || this.#asked > 0) return;
    const held = this.#items.length - this.#head;
    const items = Math.min(THREAD_BATCH_ITEMS, this.#creditItems - this.#takenItems - held);
    const bytes = Math.min(THREAD_BATCH_BYTES, this.#creditBytes - this.#takenBytes - this.#heldBytes);
    // Keep one batch in hand at most: ask again only when half of it is used.
    if (items <= 0 || bytes <= 0 || held > THREAD_BATCH_ITEMS / 2) return;
    this.#asked = items;
    this.#port.postMessage({ type: "pull", items, bytes } satisfies StreamCommand);
  }

  #onReply(reply: StreamReply): void {
    if (reply.type === "returned") {
      this.#ended = true;
      this.#returned?.();
      return;
    }
    if (reply.type === "error") {
      this.#fail(rethrown(reply.error, reply.bad === true));
      return;
    }
    this.#asked = 0;
    const { idents, lengths, values, packed } = reply;
    let at = 0;
    for (let i = 0; i < idents.length; i++) {
      const length = lengths[i]!;
      if (length >= 0) {
        this.#items.push([idents[i], packed!.subarray(at, at + length)]);
        at += length;
        this.#heldBytes += length;
      } else {
        this.#items.push(values[i]);
      }
    }
    if (reply.done) this.#ended = true;
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    if (this.#head < this.#items.length) {
      this.#waiter = undefined;
      waiter.resolve({ done: false, value: this.#take() });
      this.#ask();
    } else if (this.#ended) {
      this.#waiter = undefined;
      waiter.resolve({ done: true, value: undefined });
    } else {
      this.#ask();
    }
  }

  #fail(error: Error): void {
    if (this.#failure === undefined) this.#failure = error;
    this.#ended = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(error);
  }

  #finish(error: ThreadCrash | undefined): void {
    if (error !== undefined && !this.#ended) {
      this.#fail(error);
    } else if (!this.#ended || this.#waiter !== undefined) {
      this.#ended = true;
      const waiter = this.#waiter;
      this.#waiter = undefined;
      // Whatever is still held is delivered first; the waiter only exists when nothing is.
      waiter?.resolve({ done: true, value: undefined });
    }
    this.#returned?.();
    this.#port.close();
  }
}
