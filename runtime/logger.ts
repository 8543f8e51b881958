/**
 * One small logger, silent by default except for warnings and subroutine
 * throws on the gateway. Environment variables (read when the module loads):
 *
 * - `SWARMNET_QUIET=1`: no warnings and no subroutine-throw lines on stderr.
 * - `SWARMNET_TRACE=handler,supervisor` (or `*`): one stderr line per state
 *   transition of those actors: `gateway`, `supervisor`, `handler`,
 *   `controller`, `client`.
 */
import type { AnyActorRef, AnyMachineSnapshot, InspectionEvent } from "xstate";
import { stackOf, type SubroutineFailure } from "../actors/subroutines.js";
import { describeThrown } from "../protocol/index.js";

/** Actor kinds SWARMNET_TRACE can name (the prefix of each actor's id). */
export const TRACE_MODULES = ["gateway", "supervisor", "handler", "controller", "client"] as const;

const traced = new Set(
  (process.env["SWARMNET_TRACE"] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);
const quiet = (): boolean => process.env["SWARMNET_QUIET"] === "1";

export function tracing(module: string): boolean {
  return traced.has(module) || traced.has("*");
}

export function trace(module: string, message: string): void {
  if (tracing(module)) process.stderr.write(`[swarmnet:${module}] ${message}\n`);
}

export function warn(message: string): void {
  if (!quiet()) process.stderr.write(`swarmnet warning: ${message}\n`);
}

/** The default report of a subroutine's throw on the gateway: name, client, request and stack. */
export function logSubroutineFailure(f: SubroutineFailure): void {
  if (quiet()) return;
  const { message, name } = describeThrown(f.error);
  const what = stackOf(f.error) ?? `${name ?? "thrown"}: ${message}`;
  process.stderr.write(
    `swarmnet: subroutine '${f.name}' threw (${f.kind} #${f.requestId} from client ${f.client}, handler ${f.handlerId}): ${what}\n`,
  );
}

function stateText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object") {
    return Object.entries(value)
      .map(([k, v]) => `${k}.${stateText(v)}`)
      .join(",");
  }
  return String(value);
}

/**
 * An xstate inspect callback that traces the transitions of the actors named
 * in SWARMNET_TRACE, or undefined when nothing is traced. Chained before the
 * user's own `inspect`, if any.
 */
export function withTrace(
  inspect: ((event: InspectionEvent) => void) | { next?: (event: InspectionEvent) => void } | undefined,
): ((event: InspectionEvent) => void) | undefined {
  const user = typeof inspect === "function" ? inspect : inspect?.next?.bind(inspect);
  if (traced.size === 0) return user;
  const last = new Map<string, string>();
  return (event) => {
    if (event.type === "@xstate.snapshot") {
      const id = (event.actorRef as AnyActorRef).id;
      const module = TRACE_MODULES.find((m) => id === m || id.startsWith(`${m}-`));
      const value = (event.snapshot as AnyMachineSnapshot).value;
      if (module !== undefined && tracing(module) && value !== undefined) {
        const now = stateText(value);
        const before = last.get(id);
        if (before !== now) trace(module, `${id}: ${before ?? "(new)"} -> ${now}  (${event.event.type})`);
        if ((event.snapshot as AnyMachineSnapshot).status === "active") last.set(id, now);
        else last.delete(id);
      }
    }
    user?.(event);
  };
}
