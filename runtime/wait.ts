import type { AnyActorRef, SnapshotFrom } from "xstate";

/**
 * Resolves with the first snapshot that satisfies `predicate`; rejects if the
 * actor stops (done or error) without reaching it. No timer: the machines
 * carry their own deadlines.
 */
export function untilSnapshot<T extends AnyActorRef>(
  actor: T,
  predicate: (snapshot: SnapshotFrom<T>) => boolean,
): Promise<SnapshotFrom<T>> {
  return new Promise((resolve, reject) => {
    let done = false;
    const check = (snapshot: SnapshotFrom<T>): boolean => {
      if (done) return true;
      if (predicate(snapshot)) {
        done = true;
        resolve(snapshot);
        return true;
      }
      const status = (snapshot as { status?: string }).status;
      if (status === "done" || status === "error" || status === "stopped") {
        done = true;
        reject(new Error(`actor ${actor.id} ended (${status}) before reaching the expected state`));
        return true;
      }
      return false;
    };
    if (check(actor.getSnapshot() as SnapshotFrom<T>)) return;
    const sub = actor.subscribe({
      next: (s: SnapshotFrom<T>) => {
        if (check(s)) queueMicrotask(() => sub.unsubscribe());
      },
      error: (err: unknown) => {
        if (!done) {
          done = true;
          reject(err);
        }
      },
      complete: () => {
        if (!done) check(actor.getSnapshot() as SnapshotFrom<T>);
      },
    });
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
