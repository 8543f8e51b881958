/**
 * Timers a user can size. Node's setTimeout takes a 32-bit signed delay: from
 * 2^31 ms (about 24.8 days) on it warns and fires after 1 ms. These chain
 * timers of at most MAX_TIMER_DELAY_MS, so `timeoutMs: 2 ** 31` (or a year)
 * means what it says.
 */

/** Longest delay Node's setTimeout honours, in ms (2^31 - 1). */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** A timer from `setLongTimeout`; `clearLongTimeout` stops it. */
export interface LongTimeout {
  /** The Node timer currently armed (one link of the chain). */
  handle: NodeJS.Timeout;
  /** Whether the process may exit while it waits (false after `unref`). */
  ref: boolean;
}

/**
 * Like `setTimeout(fn, ms)`, for any `ms` up to Number.MAX_SAFE_INTEGER
 * (Infinity: never fires). Negative or NaN delays fire on the next turn, as
 * setTimeout's do. `unref` keeps the timer from holding the process open.
 */
export function setLongTimeout(fn: () => void, ms: number, options: { unref?: boolean } = {}): LongTimeout {
  const due = performance.now() + (Number.isNaN(ms) || ms < 0 ? 0 : ms);
  const timer: LongTimeout = { handle: undefined as unknown as NodeJS.Timeout, ref: options.unref !== true };
  const arm = (): void => {
    const left = due - performance.now();
    if (left > MAX_TIMER_DELAY_MS) {
      timer.handle = setTimeout(arm, MAX_TIMER_DELAY_MS);
    } else {
      timer.handle = setTimeout(fn, Math.max(0, Math.ceil(left)));
    }
    if (!timer.ref) timer.handle.unref();
  };
  arm();
  return timer;
}

/** Stops a timer from `setLongTimeout`; undefined is a no-op. */
export function clearLongTimeout(timer: LongTimeout | undefined): void {
  if (timer !== undefined) clearTimeout(timer.handle);
}

/** An interval period Node can honour: `ms` capped at MAX_TIMER_DELAY_MS (a shorter period is always safe for heartbeats and sweeps). */
export function safeInterval(ms: number): number {
  return Math.min(MAX_TIMER_DELAY_MS, ms);
}

/**
 * The clock xstate's delayed transitions (`after`) and delayed events run on,
 * built on `setLongTimeout`, for `createActor(machine, { clock: longClock })`.
 */
export const longClock = {
  setTimeout(fn: (...args: unknown[]) => void, timeout: number): LongTimeout {
    return setLongTimeout(() => fn(), timeout);
  },
  clearTimeout(id: unknown): void {
    clearLongTimeout(id as LongTimeout | undefined);
  },
};
