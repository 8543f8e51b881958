import { waitFor, type AnyActorRef, type SnapshotFrom } from "xstate";

/**
 * xstate's `waitFor` (no timer: the machines carry their own deadlines), plus
 * what it lacks: an actor that has already stopped rejects at once (`waitFor`
 * would wait forever, since a stopped actor never calls a new subscriber
 * back), and an actor that ends (done or stopped) without reaching the state
 * rejects with an error that names it. An actor that fails rejects with its
 * error, as with `waitFor`.
 *
 * @returns the first snapshot (the current one included) that satisfies `predicate`.
 */
export function untilSnapshot<T extends AnyActorRef>(
  actor: T,
  predicate: (snapshot: SnapshotFrom<T>) => boolean,
): Promise<SnapshotFrom<T>> {
  const ended = (status: string): Error => new Error(`actor ${actor.id} ended (${status}) before reaching the expected state`);
  const now = actor.getSnapshot() as SnapshotFrom<T>;
  if (predicate(now)) return Promise.resolve(now);
  const { status } = now as { status: string };
  if (status !== "active") return Promise.reject(ended(status));
  return waitFor(actor, predicate).catch((error: unknown) => {
    const { status } = actor.getSnapshot() as { status: string };
    throw status === "error" ? error : ended(status);
  });
}

/** `a.b.c` for a nested state value, for snapshots and logs. */
export function stateName(value: unknown): string {
  if (typeof value === "string") return value;
  if (value && typeof value === "object") {
    const [key, inner] = Object.entries(value)[0] ?? [];
    if (key === undefined) return "";
    const rest = stateName(inner);
    return rest ? `${key}.${rest}` : key;
  }
  return String(value);
}
