/**
 * Errors point at the user's line: a call captures its caller's frames when it
 * is made, and a failure (built later inside a timer, a socket callback or an
 * xstate action) gets them instead of those internals.
 */
import type { SwarmnetError } from "../protocol/index.js";

/**
 * Per call, capture is skipped where Node maps stacks through source maps
 * (`--enable-source-maps`, tsx): there every capture costs tens of
 * microseconds, more than the call itself. `SWARMNET_CALLSITES=1` forces it on,
 * `=0` off (read once, when the module loads). Rare operations (getClient,
 * getSwarm) pass `always`.
 */
const CALLSITES_FLAG = process.env["SWARMNET_CALLSITES"];
/** Frames kept: the caller's line and a few above it; a longer walk costs more per call. */
const CALLSITE_FRAMES = 6;

export type CallSite = { stack?: string } | undefined;

export function captureCallSite(always = false): CallSite {
  if (CALLSITES_FLAG === "0" || (!always && CALLSITES_FLAG !== "1" && process.sourceMapsEnabled)) return undefined;
  const site: { stack?: string } = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = CALLSITE_FRAMES;
  Error.captureStackTrace(site, captureCallSite);
  Error.stackTraceLimit = limit;
  return site;
}

/** Gives a failed call's error the caller's frames instead of a timer's, a socket's or xstate's. */
export function atCallSite<E extends SwarmnetError>(error: E, callSite: CallSite): E {
  if (callSite?.stack) error.stack = `${error.name}: ${error.message}\n${callSite.stack.split("\n").slice(1).join("\n")}`;
  return error;
}
