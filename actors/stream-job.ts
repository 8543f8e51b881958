/**
 * The data plane of one stream on the gateway: pulls the generator while the
 * client's credit allows, batches small items into one ZeroMQ message, and
 * never runs ahead of the window. The handler machine knows that a stream is
 * running (`busy.streaming`) and can cancel it; the items themselves do not
 * pay for a machine transition each.
 */
import {
  ErrorCode,
  MAX_STREAM_WINDOW,
  describeThrown,
  errorReply,
  isInstance,
  wireValueProblem,
  type ClientMessage,
  type StreamItemsMessage,
} from "../protocol/index.js";
import type { Job, JobOutcome, Refusal, Replier, StreamProgress } from "./job.js";
import { BadResult, ThreadCrash } from "./subroutines.js";

export type { Job, JobOutcome, JobProgress, StreamProgress } from "./job.js";

/**
 * An iterator may implement this to learn, before each pull, how many items and
 * bytes the client's credit still allows: a worker-thread generator uses it to
 * pull ahead in batches without ever passing the window.
 */
export const CREDIT_HINT: unique symbol = Symbol("swarmnet.creditHint");

/**
 * An iterator may implement this to hear at once that the stream is being aborted or
 * cancelled, even while a pull is pending: a worker-thread generator stuck in its work
 * is then asked to return, and its thread terminated if it does not.
 */
export const INTERRUPT: unique symbol = Symbol("swarmnet.interrupt");

type AnyIterator = Iterator<unknown, unknown, undefined> | AsyncIterator<unknown, unknown, undefined>;

/** Items batched into one message until this many bytes or items, or until the generator pauses. */
export const STREAM_BATCH_BYTES = 64 * 1024;
export const STREAM_BATCH_ITEMS = 256;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function";
}

const noop = (): void => undefined;

function safeGet(target: object, key: symbol): unknown {
  try {
    return (target as Record<symbol, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** What a race against the job's interrupt returns when the interrupt won. */
const INTERRUPTED = Symbol("interrupted");

/** Turns whatever a stream subroutine returned into an iterator, or undefined if it is not iterable. */
export function iteratorOf(result: unknown): AnyIterator | undefined {
  if (result === null || typeof result !== "object" || result instanceof Uint8Array || Array.isArray(result)) return undefined;
  const asyncIt = (result as { [Symbol.asyncIterator]?: () => AnyIterator })[Symbol.asyncIterator];
  if (typeof asyncIt === "function") return asyncIt.call(result);
  const it = (result as { [Symbol.iterator]?: () => AnyIterator })[Symbol.iterator];
  if (typeof it === "function") return it.call(result);
  return undefined;
}

export class StreamJob implements Job {
  readonly id: number;
  readonly #name: string;
  readonly #session: Replier;
  readonly #iterator: AnyIterator;
  readonly #hint: ((items: number, bytes: number) => void) | undefined;
  readonly #interrupt: (() => void) | undefined;
  #window: number;
  readonly #onFinish: (outcome: JobOutcome) => void;
  /** Reports the generator's throw (the gateway logs it) and gives the client's error reply. */
  readonly #onThrow: ((error: unknown) => { code: string; message: string; name?: string; stack?: string }) | undefined;
  #grantedItems: number;
  #grantedBytes: number;
  #consumedItems = 0;
  #itemsSent = 0;
  #bytesSent = 0;
  #maxOutstanding = 0;
  #abort: "none" | "client" | "cancel" = "none";
  #wake: (() => void) | undefined;
  /** A batch the outbox refused (too large, not encodable): the stream ends with it. */
  #failure: JobOutcome | undefined;
  /** Resolvers of whoever races the generator against an abort, a cancel or a failure. */
  readonly #interrupts = new Set<() => void>();
  /** The generator is stuck in a `next()` we stopped waiting for: its `return()` cannot be awaited. */
  #abandoned = false;
  // The batch being built.
  #meta: Array<[number, number] | [number, -1, unknown]> = [];
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  #flushScheduled = false;

  constructor(options: {
    id: number;
    name: string;
    session: Replier;
    iterator: AnyIterator;
    window: number;
    windowBytes: number;
    onFinish: (outcome: JobOutcome) => void;
    onThrow?: (error: unknown) => { code: string; message: string; name?: string; stack?: string };
  }) {
    this.id = options.id;
    this.#name = options.name;
    this.#session = options.session;
    this.#iterator = options.iterator;
    // A user's iterator may be a Proxy whose get trap throws: it simply has no hint or interrupt.
    const hint = safeGet(options.iterator, CREDIT_HINT);
    this.#hint = typeof hint === "function" ? (hint.bind(options.iterator) as (items: number, bytes: number) => void) : undefined;
    const interrupt = safeGet(options.iterator, INTERRUPT);
    this.#interrupt = typeof interrupt === "function" ? (interrupt.bind(options.iterator) as () => void) : undefined;
    this.#window = options.window;
    this.#grantedItems = options.window;
    this.#grantedBytes = options.windowBytes;
    this.#onFinish = options.onFinish;
    this.#onThrow = options.onThrow;
  }

  start(): void {
    // #run catches what the generator throws; anything else it throws must not go unhandled either.
    this.#run().catch((err: unknown) => {
      this.#onFinish({ type: "crashed", message: `stream job failed: ${describeThrown(err).message}` });
    });
  }

  onMessage(message: ClientMessage): void {
    if (message.type === "stream.credit") {
      // The window never grows past MAX_STREAM_WINDOW items, however often a client asks.
      const grow = Math.max(0, Math.min(message.grow ?? 0, MAX_STREAM_WINDOW - this.#window));
      this.#window += grow;
      this.#grantedItems += message.items + grow;
      this.#grantedBytes += message.bytes;
      this.#consumedItems += message.items;
    } else if (message.type === "stream.abort") {
      if (this.#abort === "none") this.#abort = "client";
      this.#interruptSafely();
    } else {
      return;
    }
    this.#wakeUp();
  }

  cancel(): void {
    if (this.#abort === "none") this.#abort = "cancel";
    this.#interruptSafely();
    this.#wakeUp();
  }

  progress(): StreamProgress {
    return {
      kind: "stream",
      name: this.#name,
      itemsSent: this.#itemsSent,
      bytesSent: this.#bytesSent,
      outstanding: this.#itemsSent - this.#consumedItems,
      maxOutstanding: this.#maxOutstanding,
      window: this.#window,
    };
  }

  #interruptSafely(): void {
    try {
      this.#interrupt?.();
    } catch {
      // An iterator's own interrupt hook that throws changes nothing: the job still ends.
    }
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
    for (const interrupt of this.#interrupts) interrupt();
  }

  /**
   * Waits for `promise` unless `stop()` holds or comes to hold (an abort, a
   * cancel, a refused batch): a generator that never yields, or a `finally`
   * that never ends, must not keep the handler busy once nobody waits for it.
   */
  async #unless<T>(promise: PromiseLike<T>, stop: () => boolean): Promise<T | typeof INTERRUPTED> {
    if (stop()) return INTERRUPTED;
    let interrupt: () => void = noop;
    const interrupted = new Promise<typeof INTERRUPTED>((resolve) => {
      interrupt = () => {
        if (stop()) resolve(INTERRUPTED);
      };
      this.#interrupts.add(interrupt);
    });
    try {
      return await Promise.race([promise, interrupted]);
    } finally {
      this.#interrupts.delete(interrupt);
    }
  }

  async #run(): Promise<void> {
    let outcome: JobOutcome;
    try {
      outcome = await this.#pump();
    } catch (err) {
      this.#flush();
      const { message, name } = describeThrown(err);
      outcome = isInstance(err, ThreadCrash)
        ? { type: "crashed", message }
        : isInstance(err, BadResult)
          ? { type: "failed", code: ErrorCode.BAD_RESULT, message }
          : (this.#failure ??
            (this.#onThrow
              ? { type: "failed", ...this.#onThrow(err) }
              : name === undefined
                ? { type: "failed", code: ErrorCode.REMOTE, message }
                : { type: "failed", code: ErrorCode.REMOTE, message, name }));
    }
    // Ended by the consumer, an end marker, a bad item or cancel: let the generator's finally run.
    // (On a generator that threw, return() is a no-op.) A generator still stuck in a next() we
    // gave up on runs its finally whenever that next() settles; a finally that never ends is
    // waited for only until the handler is cancelled.
    try {
      const returned = this.#iterator.return?.();
      if (isThenable(returned)) {
        const settled = Promise.resolve(returned).then(noop, noop);
        if (!this.#abandoned) await this.#unless(settled, () => this.#abort === "cancel");
      }
    } catch {
      // A throw from the generator's cleanup changes nothing for the client.
    }
    if (this.#abort === "cancel") return;
    if (outcome.type === "crashed") {
      // No answer from here: the supervisor fails the request with HANDLER_CRASHED.
      this.#onFinish(outcome);
      return;
    }
    if (outcome.type === "failed") {
      const { code, message, name, stack } = outcome;
      this.#session.reply(errorReply(this.id, code, message, { name, stack }));
    } else {
      this.#session.reply(
        outcome.type === "aborted"
          ? { type: "stream.end", id: this.id, count: outcome.count, aborted: true }
          : { type: "stream.end", id: this.id, count: outcome.count },
      );
    }
    this.#onFinish(outcome);
  }

  async #pump(): Promise<JobOutcome> {
    let sinceYield = 0;
    for (;;) {
      if (this.#failure !== undefined) return this.#failure;
      if (this.#abort !== "none") {
        this.#flush();
        return this.#failure ?? { type: "aborted", count: this.#itemsSent };
      }
      if (this.#itemsSent >= this.#grantedItems || this.#bytesSent >= this.#grantedBytes) {
        this.#flush();
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
        continue;
      }
      this.#hint?.(this.#grantedItems - this.#itemsSent, this.#grantedBytes - this.#bytesSent);
      let step = this.#iterator.next();
      if (isThenable(step)) {
        // While the generator thinks, whatever is batched goes out on the next turn of the loop.
        this.#scheduleFlush();
        const pending = step;
        // A consumer's abort waits for the generator (so its finally runs before the acknowledgement);
        // a cancel (the client gave up: its deadline passed) or a refused batch does not.
        const settled = await this.#unless(pending, () => this.#abort === "cancel" || this.#failure !== undefined);
        if (settled === INTERRUPTED) {
          // The generator may never yield again: stop waiting (a late rejection is not unhandled).
          Promise.resolve(pending).then(noop, noop);
          this.#abandoned = true;
          continue;
        }
        step = settled;
        sinceYield = 0;
        // Aborted or cancelled while the generator was busy: its item is not sent.
        if (this.#abort !== "none") continue;
      }
      const { done, value } = step as IteratorResult<unknown>;
      if (done) {
        this.#flush();
        return this.#failure ?? { type: "done", count: this.#itemsSent };
      }
      // An ident is a safe integer: NaN would never end the stream (NaN < 0 is false), 1.5 or 2**53 + 1 would not arrive as yielded.
      if (!Array.isArray(value) || !Number.isSafeInteger(value[0])) {
        this.#flush();
        return (
          this.#failure ?? {
            type: "failed",
            code: ErrorCode.BAD_RESULT,
            message: `stream '${this.#name}' must yield [ident, buffer] pairs with a safe-integer ident`,
          }
        );
      }
      const ident = value[0] as number;
      const buffer: unknown = value[1];
      // pynetwork's end markers: a negative ident or a null buffer ends the stream; they are not items.
      if (ident < 0 || buffer === null || buffer === undefined) {
        this.#flush();
        return this.#failure ?? { type: "done", count: this.#itemsSent };
      }
      if (!(buffer instanceof Uint8Array)) {
        const problem = wireValueProblem(buffer);
        if (problem !== undefined) {
          this.#flush();
          if (this.#failure !== undefined) return this.#failure;
          const refusal = {
            code: ErrorCode.BAD_RESULT,
            message: `item ${this.#itemsSent} of stream '${this.#name}' cannot cross the wire as it is: ${problem.replace(/^value/, "its buffer")}`,
          };
          this.#session.countRefusal(refusal);
          return { type: "failed", ...refusal };
        }
      }
      this.#add(ident, buffer);
      if (this.#meta.length >= STREAM_BATCH_ITEMS || this.#partBytes >= STREAM_BATCH_BYTES) {
        this.#flush();
        // A sync generator never awaits: give the socket writer and other clients a turn.
        if (++sinceYield >= 4) {
          sinceYield = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
    }
  }

  #add(ident: number, buffer: unknown): void {
    this.#itemsSent++;
    const outstanding = this.#itemsSent - this.#consumedItems;
    if (outstanding > this.#maxOutstanding) this.#maxOutstanding = outstanding;
    if (buffer instanceof Uint8Array) {
      this.#meta.push([ident, buffer.length]);
      this.#parts.push(buffer);
      this.#partBytes += buffer.length;
      this.#bytesSent += buffer.length;
    } else {
      this.#meta.push([ident, -1, buffer]);
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#meta.length === 0) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      if (this.#abort !== "cancel") this.#flush();
    });
  }

  /**
   * Sends the batch. If the outbox refuses it (an item CBOR cannot encode, or
   * over `maxMessageSize`), the items go one at a time, so every item before
   * the bad one is delivered, and the stream fails with the refusal.
   */
  #flush(): void {
    if (this.#meta.length === 0 || this.#failure !== undefined) return;
    const items = this.#meta as StreamItemsMessage["items"];
    const parts = this.#parts;
    const raw = parts.length === 0 ? undefined : parts.length === 1 ? parts[0] : Buffer.concat(parts, this.#partBytes);
    this.#meta = [];
    this.#parts = [];
    this.#partBytes = 0;
    const refusal = this.#session.tryReply({ type: "stream.items", id: this.id, items }, raw);
    if (refusal === undefined) return;
    if (items.length === 1) return this.#fail(refusal, this.#itemsSent - 1);
    let part = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const bytes = item[1] >= 0 ? parts[part++] : undefined;
      const one = this.#session.tryReply({ type: "stream.items", id: this.id, items: [item] }, bytes);
      if (one !== undefined) return this.#fail(one, this.#itemsSent - items.length + i);
    }
  }

  #fail(refusal: Refusal, index: number): void {
    this.#session.countRefusal(refusal);
    this.#failure = { type: "failed", code: refusal.code, message: `stream '${this.#name}', item ${index}: ${refusal.message}` };
    this.#wakeUp();
  }
}
