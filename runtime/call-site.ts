/**
 * Errors point at the user's line: a call captures its caller's frames when it
 * is made, and a failure (built later inside a timer, a socket callback or an
 * xstate action) gets them instead of those internals.
 */
import type { SwarmnetError } from "../protocol/index.js";

/**
 * Eager capture costs 10-20 µs per call (a stack walk), a tenth of a ping's CPU,
 * so calls (`Client.ping`, `getSubroutineBatch` ...) do not capture: their failures
 * take the awaiting caller's frames when they fail (`atAwaiter`, V8's async stack
 * traces, paid only on failure). Rare operations (getClient, getSwarm, a stream,
 * a transfer) pass `always` and capture eagerly (under source maps, as with tsx,
 * a capture costs tens of microseconds, once per such operation).
 * `SWARMNET_CALLSITES=1` makes every call capture eagerly
 * (a caller that does not `await` then still gets its line), `=0` turns capture
 * off (read once, when the module loads).
 */
const CALLSITES_FLAG = process.env["SWARMNET_CALLSITES"];
/** Frames kept: the caller's line and a few above it; a longer walk costs more per call. */
const CALLSITE_FRAMES = 6;

export type CallSite = { stack?: string } | undefined;

export function captureCallSite(always = false): CallSite {
  if (CALLSITES_FLAG === "0" || (!always && CALLSITES_FLAG !== "1")) return undefined;
  const site: { stack?: string } = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = CALLSITE_FRAMES;
  Error.captureStackTrace(site, captureCallSite);
  Error.stackTraceLimit = limit;
  return site;
}

/**
 * Settles as `promise` does; an Error it rejects with gets the frames of the
 * code awaiting this (V8's async stack traces: `at async main (app.ts:12)`)
 * instead of a timer's or a socket callback's. Nothing is captured unless it
 * fails. When nothing awaits (a bare `.then`), the error keeps its own stack.
 */
export async function atAwaiter<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof Error && CALLSITES_FLAG !== "0") {
      const site: { stack?: string } = {};
      Error.captureStackTrace(site, atAwaiter);
      const frames = site.stack?.indexOf("\n") ?? -1;
      if (frames >= 0) error.stack = `${error.name}: ${error.message}${site.stack!.slice(frames)}`;
    }
    throw error;
  }
}

/** Gives a failed call's error the caller's frames instead of a timer's, a socket's or xstate's. */
export function atCallSite<E extends SwarmnetError>(error: E, callSite: CallSite): E {
  if (callSite?.stack) error.stack = `${error.name}: ${error.message}\n${callSite.stack.split("\n").slice(1).join("\n")}`;
  return error;
}
