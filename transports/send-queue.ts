/**
 * zeromq.js allows one pending `send()` per socket (a second one while the
 * first waits rejects with EBUSY), so every socket gets exactly one writer:
 * this queue. Callers never await it; failures are reported per message.
 */

export interface QueuedMessage<T> {
  readonly frames: readonly Uint8Array[];
  readonly tag: T;
}

export class SendQueue<T> {
  #items: Array<QueuedMessage<T> | undefined> = [];
  #head = 0;
  #running = false;
  #closed = false;
  #idleWaiters: Array<() => void> = [];
  readonly #write: (frames: readonly Uint8Array[]) => Promise<void>;
  readonly #onError: (tag: T, error: Error) => void;

  constructor(write: (frames: readonly Uint8Array[]) => Promise<void>, onError: (tag: T, error: Error) => void) {
    this.#write = write;
    this.#onError = onError;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(frames: readonly Uint8Array[], tag: T): void {
    if (this.#closed) return;
    this.#items.push({ frames, tag });
    if (!this.#running) void this.#pump();
  }

  /** Resolves when everything queued so far has been handed to the socket, or after `timeoutMs`. */
  drained(timeoutMs: number): Promise<void> {
    if (!this.#running && this.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      const waiters = this.#idleWaiters;
      function done(): void {
        clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      waiters.push(done);
    });
  }

  /** Drops whatever is still queued; the writer stops after its current message. */
  close(): void {
    this.#closed = true;
    this.#items = [];
    this.#head = 0;
    this.#wakeIdle();
  }

  async #pump(): Promise<void> {
    this.#running = true;
    try {
      while (!this.#closed && this.#head < this.#items.length) {
        const item = this.#items[this.#head]!;
        this.#items[this.#head++] = undefined;
        if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
          this.#items = this.#items.slice(this.#head);
          this.#head = 0;
        }
        try {
          await this.#write(item.frames);
        } catch (err) {
          if (!this.#closed) this.#onError(item.tag, err as Error);
        }
      }
    } finally {
      this.#running = false;
      if (this.#head === this.#items.length) {
        this.#items = [];
        this.#head = 0;
      }
      this.#wakeIdle();
    }
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
