/**
 * The client side of a stream: an AsyncIterable of `[ident, buffer]` fed by
 * the receive loop (DataSink), which grants credit as the consumer takes
 * items. The gateway never runs more than the window ahead of what was
 * consumed, so this buffer never holds more than `window` items.
 */
import type { DataSink } from "../actors/client.js";
import {
  AbortedError,
  TimeoutError,
  clearLongTimeout,
  type LongTimeout,
  setLongTimeout,
  type StreamEndMessage,
  type StreamItemsMessage,
  type SwarmnetError,
} from "../protocol/index.js";

/** One stream item: the generator's ident and its buffer (bytes, or any CBOR value). */
export type StreamItem<T = Uint8Array> = [ident: number, buffer: T];

export interface StreamOptions {
  /** Aborts the stream (the generator's `return()` runs on the gateway); iteration rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Items the gateway may run ahead of the consumer. Unset, the window starts
   * at 2048 and tunes itself to the link, as TCP's receive window does: each
   * time the consumer has caught up with everything that arrived, and half a
   * window arrived since the last change, it quadruples, up to 65,536 items (the
   * byte window, `windowBytes`, still bounds memory). Set, it stays fixed.
   * @default 2048, growing
   */
  window?: number;
  /** Bytes (of byte items) the gateway may run ahead of the consumer. @default 16 MiB */
  windowBytes?: number;
  /** Longest wait for the first item, and for an abort's acknowledgement, in ms. @default the controller's timeoutMs */
  timeoutMs?: number;
  /**
   * Longest gap between two items once the first has arrived, in ms: a sensor
   * that yields every few minutes needs none. A gateway that is gone still ends
   * the stream (ConnectionError once the link has been down for the gateway's
   * lease, `livenessMs`, while the client's link is watched). @default 600000 (10 minutes)
   */
  idleTimeoutMs?: number;
}

export interface StreamControl {
  /** Sends a control message (credit, abort) on the client's connection. */
  send(
    message: { type: "stream.credit"; id: number; items: number; bytes: number; grow?: number } | { type: "stream.abort"; id: number },
  ): void;
  /** Tells the client machine the stream is over (end seen), or failed locally. */
  finished(id: number): void;
  failed(id: number, error: SwarmnetError): void;
}

const NOTHING = Symbol("nothing");

/** The longest gap between two stream items by default: generous, so slow sensors live, yet a stream never waits forever. */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 600_000;

export class StreamReader<T = unknown> implements DataSink, AsyncIterator<StreamItem<T>> {
  readonly id: number;
  readonly #control: StreamControl;
  readonly #timeoutMs: number;
  readonly #idleTimeoutMs: number | undefined;
  /** "stream of NAME": what errors call it. */
  readonly #label: string;
  #creditItems: number;
  readonly #creditBytes: number;
  /** The item window now, and how far it may grow by itself (undefined: fixed). */
  #window: number;
  readonly #windowMax: number | undefined;
  /** `received` when the window last changed. */
  #receivedAtGrowth = 0;
  #items: Array<StreamItem<T> | undefined> = [];
  #head = 0;
  #end: "open" | "done" | "aborted" = "open";
  #error: unknown = NOTHING;
  #aborting = false;
  #callSettled = false;
  #opened = false;
  /** Who waits for data: the consumer's next() and, while aborting, abort() too. */
  readonly #waiters = new Set<() => void>();
  #handed = 0;
  #handedBytes = 0;
  #unackedItems = 0;
  #unackedBytes = 0;
  /** Items and bytes received, for progress. */
  received = 0;

  constructor(
    id: number,
    control: StreamControl,
    options: {
      window: number;
      windowBytes: number;
      timeoutMs: number;
      idleTimeoutMs?: number | undefined;
      label?: string;
      windowMax?: number | undefined;
    },
  ) {
    this.id = id;
    this.#control = control;
    this.#timeoutMs = options.timeoutMs;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS;
    this.#label = options.label ?? `stream ${id}`;
    this.#creditItems = Math.max(1, Math.floor(options.window / 4));
    this.#window = options.window;
    this.#windowMax = options.windowMax;
    this.#creditBytes = Math.max(1, Math.floor(options.windowBytes / 4));
  }

  /** The item window now (it grows by itself unless `window` was given). */
  get window(): number {
    return this.#window;
  }

  /** @internal The open request is going on the wire now. */
  markOpened(): void {
    this.#opened = true;
  }

  /** Whether the stream failed (timed out, remote error, closed): a stream still queued is then never sent. */
  get failed(): boolean {
    return this.#error !== NOTHING;
  }

  /** Why the stream ended: "done" (the generator ended it), "aborted" (we asked), or "open". */
  get end(): "open" | "done" | "aborted" {
    return this.#end;
  }

  onData(message: StreamItemsMessage | StreamEndMessage, raw: Uint8Array | undefined): void {
    if (message.type === "stream.end") {
      this.#end = message.aborted ? "aborted" : "done";
      this.#control.finished(this.id);
    } else if (!this.#aborting) {
      let offset = 0;
      for (const entry of message.items) {
        const [ident, length] = entry;
        if (length >= 0) {
          // A view into the frame, not a copy.
          this.#items.push([ident, raw!.subarray(offset, offset + length) as T]);
          offset += length;
        } else {
          this.#items.push([ident, entry[2] as T]);
        }
      }
      this.received += message.items.length;
    }
    this.#wakeUp();
  }

  /** The call failed (remote error, session ended, ...): items already here are still delivered first. */
  fail(error: unknown): void {
    this.#callSettled = true;
    if (this.#error === NOTHING) this.#error = error;
    this.#wakeUp();
  }

  async next(): Promise<IteratorResult<StreamItem<T>>> {
    this.#grantCredit();
    for (;;) {
      if (this.#head < this.#items.length) {
        const item = this.#items[this.#head]!;
        this.#items[this.#head++] = undefined;
        if (this.#head === this.#items.length) {
          this.#items = [];
          this.#head = 0;
        }
        this.#handed++;
        if (item[1] instanceof Uint8Array) this.#handedBytes += item[1].length;
        return { value: item, done: false };
      }
      if (this.#error !== NOTHING) throw this.#error;
      if (this.#end !== "open") return { value: undefined, done: true };
      this.#grow();
      await this.#waitForData();
    }
  }

  /** Stops the stream early (break, return(), abort signal): the gateway runs the generator's return(). */
  async return(): Promise<IteratorResult<StreamItem<T>>> {
    await this.abort();
    return { value: undefined, done: true };
  }

  async abort(reason?: unknown): Promise<void> {
    if (reason !== undefined && this.#error === NOTHING) this.#error = reason;
    this.#items = [];
    this.#head = 0;
    if (this.#end !== "open" || this.#aborting) {
      this.#wakeUp();
      return;
    }
    if (!this.#opened) {
      // Still waiting in the client's queue: it will never be sent.
      this.#end = "aborted";
      this.#wakeUp();
      return;
    }
    this.#aborting = true;
    this.#control.send({ type: "stream.abort", id: this.id });
    this.#wakeUp();
    // Wait for the gateway's acknowledgement, so the handler is idle for the next call.
    while (this.#end === "open" && !this.#callSettled) {
      if (!(await this.#waitForData(true))) break;
    }
  }

  /**
   * The consumer has taken everything that arrived and waits: if half a
   * window arrived since the window last changed, the link (its round trip),
   * not the consumer, held the stream back. Quadruple the window (a `grow` on
   * a credit sent now), up to its maximum. A slow generator also starves the
   * consumer; then the larger window costs nothing, as nothing fills it.
   */
  #grow(): void {
    if (this.#windowMax === undefined || this.#window >= this.#windowMax || this.#aborting || !this.#opened) return;
    if (this.received - this.#receivedAtGrowth < this.#window / 2) return;
    const grow = Math.min(this.#window * 3, this.#windowMax - this.#window);
    this.#window += grow;
    this.#receivedAtGrowth = this.received;
    this.#creditItems = Math.max(1, Math.floor(this.#window / 4));
    this.#control.send({ type: "stream.credit", id: this.id, items: this.#unackedItems, bytes: this.#unackedBytes, grow });
    this.#unackedItems = 0;
    this.#unackedBytes = 0;
  }

  #grantCredit(): void {
    this.#unackedItems += this.#handed;
    this.#unackedBytes += this.#handedBytes;
    this.#handed = 0;
    this.#handedBytes = 0;
    if (this.#end !== "open" || this.#aborting) return;
    if (this.#unackedItems >= this.#creditItems || this.#unackedBytes >= this.#creditBytes) {
      this.#control.send({ type: "stream.credit", id: this.id, items: this.#unackedItems, bytes: this.#unackedBytes });
      this.#unackedItems = 0;
      this.#unackedBytes = 0;
    }
  }

  /**
   * Waits for the next message, bounded by the deadline (the first item and an
   * abort's acknowledgement: timeoutMs; later items: idleTimeoutMs, if any);
   * false if it passed.
   */
  #waitForData(aborting = false): Promise<boolean> {
    const first = this.received === 0;
    const ms = aborting || first ? this.#timeoutMs : this.#idleTimeoutMs;
    return new Promise<boolean>((resolve) => {
      let timer: LongTimeout | undefined;
      const wake = (): void => {
        clearLongTimeout(timer);
        this.#waiters.delete(wake);
        resolve(true);
      };
      if (ms === undefined || ms <= 0) {
        this.#waiters.add(wake);
        return;
      }
      timer = setLongTimeout(() => {
        this.#waiters.delete(wake);
        const error = new TimeoutError(
          aborting
            ? `${this.#label}: no acknowledgement of the abort within ${ms} ms (timeoutMs)`
            : first
              ? `${this.#label}: no item within ${ms} ms (timeoutMs: the time to the first item)`
              : `${this.#label}: no item for ${ms} ms since the last one (idleTimeoutMs)`,
        );
        if (this.#error === NOTHING) this.#error = error;
        if (!aborting) this.#control.send({ type: "stream.abort", id: this.id });
        this.#control.failed(this.id, error);
        resolve(false);
      }, ms);
      this.#waiters.add(wake);
    });
  }

  #wakeUp(): void {
    // Each waiter removes itself, which a Set allows mid-iteration; nobody adds one synchronously.
    for (const wake of this.#waiters) wake();
  }
}

/** Thrown into a stream's consumer when its AbortSignal fires without a reason of its own. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new AbortedError("stream aborted");
}

/**
 * Merges several streams into one, in ascending ident order: pynetwork's
 * "one generator served by many handlers". Each source must itself yield
 * ascending idents; the merge holds one item per source.
 */
export async function* reorderByIdent<T>(sources: Iterable<AsyncIterable<StreamItem<T>>>): AsyncGenerator<StreamItem<T>> {
  const iterators = [...sources].map((s) => s[Symbol.asyncIterator]());
  const heads: Array<StreamItem<T> | undefined> = await Promise.all(
    iterators.map(async (it) => {
      const r = await it.next();
      return r.done ? undefined : r.value;
    }),
  );
  try {
    for (;;) {
      let min = -1;
      for (let i = 0; i < heads.length; i++) {
        const head = heads[i];
        if (head !== undefined && (min < 0 || head[0] < heads[min]![0])) min = i;
      }
      if (min < 0) return;
      yield heads[min]!;
      const r = await iterators[min]!.next();
      heads[min] = r.done ? undefined : r.value;
    }
  } finally {
    await Promise.all(iterators.map((it, i) => (heads[i] !== undefined ? it.return?.() : undefined)));
  }
}
