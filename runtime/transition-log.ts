/**
 * The recent transitions of an actor system, kept in a ring for the web
 * inspector (which steps back through them). It hooks in with xstate's
 * `system.inspect()`, so an actor system nobody watches pays nothing, and one
 * that is watched pays a small object per transition.
 */
import type { AnyActor, AnyActorLogic, AnyActorRef, InspectionEvent, Subscription } from "xstate";
import { stateName } from "./wait.js";

/** One step of one actor: the event it took and the state it is in after it. */
export interface TransitionRecord {
  /** Increases by one per record, across the whole system: the cursor of `since()`. */
  readonly seq: number;
  /** Wall-clock time, ms since the epoch. */
  readonly at: number;
  /** The actor's id: `gateway`, `supervisor`, `handler-3.0`, `client-1`. */
  readonly actor: string;
  /** Its machine: `gateway`, `supervisor`, `handler`, `controller`, `client`. */
  readonly kind: string;
  /** The event's type (`rpc.call`, `call.done`, `xstate.init` for the first state). */
  readonly event: string;
  /** The state after the event, as `busy.batchGet`. */
  readonly state: string;
  /** `active`, `done`, `error` or `stopped`. */
  readonly status: string;
  /** For requests: `#7 mount_usage`. */
  readonly detail?: string;
}

/** How many transitions a log keeps. @default 2000 */
export const DEFAULT_TRANSITION_LOG_SIZE = 2000;
/** Most records one `since()` returns; the next call goes on from there. */
export const MAX_TRANSITIONS_PER_READ = 500;

function detailOf(event: { readonly type: string; readonly message?: unknown }): string | undefined {
  const message = event.message;
  if (message === null || typeof message !== "object") return undefined;
  const { id, name } = message as { id?: unknown; name?: unknown };
  if (typeof id !== "number") return undefined;
  return typeof name === "string" ? `#${id} ${name.slice(0, 64)}` : `#${id}`;
}

export class TransitionLog {
  readonly #ring: (TransitionRecord | undefined)[];
  readonly #kinds: ReadonlyMap<AnyActorLogic, string>;
  #seq = 0;
  #subscription: Subscription | undefined;

  /** `kinds` names the machines to record (others in the system are ignored). */
  constructor(kinds: ReadonlyMap<AnyActorLogic, string>, size = DEFAULT_TRANSITION_LOG_SIZE) {
    this.#kinds = kinds;
    this.#ring = new Array<TransitionRecord | undefined>(size);
  }

  /** Starts recording `actor`'s whole system (it and every descendant). A second call is a no-op. */
  attach(actor: AnyActorRef): this {
    this.#subscription ??= actor.system.inspect((event: InspectionEvent) => this.#record(event));
    return this;
  }

  /** Stops recording; what was recorded stays readable. */
  detach(): void {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
  }

  /** The cursor of the newest record (0 when none). */
  get last(): number {
    return this.#seq;
  }

  /**
   * Records after cursor `since`, oldest first, at most MAX_TRANSITIONS_PER_READ,
   * and the cursor to pass next. A cursor from before the oldest kept record
   * (or from another log: larger than any here) reads from the oldest kept.
   */
  since(since: number): { transitions: TransitionRecord[]; next: number } {
    const size = this.#ring.length;
    const oldest = Math.max(1, this.#seq - size + 1);
    const from = since < oldest - 1 || since > this.#seq ? oldest : since + 1;
    const to = Math.min(this.#seq, from + MAX_TRANSITIONS_PER_READ - 1);
    const transitions: TransitionRecord[] = [];
    for (let seq = from; seq <= to; seq++) {
      const record = this.#ring[seq % size];
      if (record !== undefined && record.seq === seq) transitions.push(record);
    }
    return { transitions, next: Math.max(to, from - 1) };
  }

  #record(event: InspectionEvent): void {
    if (event.type !== "@xstate.snapshot") return;
    const kind = this.#kinds.get((event.actorRef as AnyActor).logic);
    if (kind === undefined) return;
    const snapshot = event.snapshot as { value?: unknown; status?: string };
    const detail = detailOf(event.event);
    const seq = ++this.#seq;
    this.#ring[seq % this.#ring.length] = {
      seq,
      at: Date.now(),
      actor: (event.actorRef as AnyActorRef).id,
      kind,
      event: event.event.type,
      state: stateName(snapshot.value),
      status: snapshot.status ?? "active",
      ...(detail !== undefined ? { detail } : {}),
    };
  }
}
