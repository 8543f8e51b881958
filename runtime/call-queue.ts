/**
 * The calls of one client that wait their turn: one request at a time goes
 * out (p-queue, concurrency 1), and every call made and not yet handed to the
 * client machine is here, so that
 * - its deadline runs from the moment it was made: a call whose deadline
 *   passes while it waits fails then with TimeoutError and never goes out;
 * - `failAll` settles every waiting call at once (close, session ended).
 * The call in flight belongs to the client machine (actors/client.ts), which
 * settles it; between the two, every call has exactly one owner.
 */
import PQueue from "p-queue";
import { clearLongTimeout, setLongTimeout, TimeoutError, type LongTimeout, type SwarmnetError } from "../protocol/index.js";

/** What a call gets when its turn comes: settle it through these, and the next call may go. */
export interface CallTurn<T> {
  /** When the call's deadline passes (performance.now() ms); Infinity without one. */
  readonly deadline: number;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

interface Waiting {
  readonly fail: (error: unknown) => void;
  timer: LongTimeout | undefined;
}

export class CallQueue {
  readonly #queue = new PQueue({ concurrency: 1 });
  readonly #waiting = new Set<Waiting>();
  /** The turn of the call in flight, until it settles. */
  #current: CallTurn<unknown> | undefined;

  /** Calls waiting for their turn (not counting the one in flight). */
  get waiting(): number {
    return this.#waiting.size;
  }

  /**
   * Queues a call. `start` runs when its turn comes (unless it already failed
   * while waiting) and must end in `resolve` or `reject`; the next call goes
   * after that. With `timeoutMs`, a call still waiting when it passes rejects
   * with TimeoutError (`what` names it in the message).
   */
  run<T>(
    start: (turn: CallTurn<T>) => void,
    options: { timeoutMs?: number | undefined; what?: string; onFail?: (error: unknown) => void } = {},
  ): Promise<T> {
    const { timeoutMs, what = "call" } = options;
    const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
    return new Promise<T>((resolve, reject) => {
      const entry: Waiting = {
        fail: (error) => {
          if (!this.#waiting.delete(entry)) return;
          clearLongTimeout(entry.timer);
          options.onFail?.(error);
          reject(error);
        },
        timer: undefined,
      };
      this.#waiting.add(entry);
      if (timeoutMs !== undefined) {
        entry.timer = setLongTimeout(
          () =>
            entry.fail(
              new TimeoutError(`${what} still waiting for its turn on this client after ${timeoutMs} ms (its deadline): never sent`),
            ),
          timeoutMs,
          { unref: true },
        );
      }
      void this.#queue.add(
        () =>
          new Promise<void>((done) => {
            if (!this.#waiting.delete(entry)) return done(); // failed while it waited
            clearLongTimeout(entry.timer);
            const turn: CallTurn<T> = {
              deadline,
              resolve: (value) => {
                if (this.#current === turn) this.#current = undefined;
                done();
                resolve(value);
              },
              reject: (error) => {
                if (this.#current === turn) this.#current = undefined;
                done();
                reject(error);
              },
            };
            this.#current = turn as CallTurn<unknown>;
            try {
              start(turn);
            } catch (error) {
              turn.reject(error);
            }
          }),
      );
    });
  }

  /**
   * Fails every call still waiting for its turn with `error`, at once. With
   * `inFlight`, the call in flight too (the session is over: whoever owned it
   * can no longer answer it; settling twice is a no-op). `error` may be a
   * function, called only when there is a call to fail.
   */
  failAll(error: SwarmnetError | (() => SwarmnetError), options: { inFlight?: boolean } = {}): void {
    if (this.#waiting.size === 0 && (!options.inFlight || this.#current === undefined)) return;
    const reason = typeof error === "function" ? error() : error;
    for (const entry of [...this.#waiting]) entry.fail(reason);
    if (options.inFlight) this.#current?.reject(reason);
  }

  /** Resolves when no call waits and none is in flight. */
  onIdle(): Promise<void> {
    return this.#queue.onIdle();
  }
}
