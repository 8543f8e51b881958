/**
 * A session is one client connection's claim on a handler. The supervisor
 * creates and removes sessions; the gateway's dispatcher only looks them up
 * to route frames, without a machine transition per frame.
 */
import { randomBytes } from "node:crypto";
import type { GatewayMessage, SessionEndReason } from "../protocol/index.js";
import type { Frames, Peer } from "../transports/transport.js";
import { DeliveryChannel, SECRET_BYTES, type DeliveryStats } from "./delivery.js";
import type { DirectRequest, HandlerRef } from "./handler-events.js";
import type { Job, Refusal } from "./job.js";

/**
 * Encodes and queues a message to one peer; never throws. Returns false when
 * the message was refused (not encodable, or a frame over `maxMessageSize`
 * bytes, the gateway's own limit by default) and the request it answers was
 * sent an `error` instead. With `via`, the frames (and such an error) go
 * there instead of the transport: a session's delivery channel, which numbers them.
 */
export interface Outbox {
  send(peer: Peer, message: GatewayMessage, raw?: Uint8Array, maxMessageSize?: number, via?: (frames: Frames) => void): boolean;
  /** Like `send`, but a refused message is only reported (code and reason), nobody is told and nothing counted: the caller decides. */
  trySend(
    peer: Peer,
    message: GatewayMessage,
    raw?: Uint8Array,
    maxMessageSize?: number,
    via?: (frames: Frames) => void,
  ): Refusal | undefined;
  /** Counts a refusal the caller settled on (for `gateway.snapshot().replies`). */
  countRefusal(refusal: Refusal): void;
  /** Queues frames as they are (a delivery header first); a failure comes back with `tag`. */
  write(peer: Peer, frames: Frames, tag: number): void;
}

export type { Refusal } from "./job.js";

/** How a session ended, remembered for a while so that a late resume learns why. */
export interface SessionEnd {
  readonly code: string;
  readonly message: string;
  readonly reason: SessionEndReason;
}

/** Messages sent while a request is still running: they do not answer it (a crash must still fail it). */
const IN_PROGRESS: ReadonlySet<GatewayMessage["type"]> = new Set(["stream.items", "file.data", "file.credit", "file.ready"]);

export class Session {
  readonly handlerId: number;
  readonly peer: Peer;
  /** The live handler; replaced when the supervisor restarts a crashed one. */
  ref: HandlerRef | undefined;
  /** Actor id of the live handler (`handler-<slot>.<generation % 2>`). */
  actorId = "";
  /** The pool slot, reused once free: part of the actor id (ids must not grow without bound). */
  slot = 0;
  generation = 0;
  /** Times of the restarts inside the current restart window. */
  restarts: number[] = [];
  #inflight: number | undefined;
  /** The stream or transfer the handler is running, fed directly by the dispatcher. */
  job: Job | undefined;
  /** Requests this session's handlers answered (across restarts), for snapshots. */
  served = 0;
  /**
   * Serves a ping or a batch call on the data plane (no handler transition) when
   * the handler can take it now; false when it must go to the handler as an
   * event. Set with `ref` by whoever spawns the handler (`directServer`).
   */
  direct: ((request: DirectRequest) => boolean) | undefined;
  /** Id of the last request whose final answer went out. */
  lastAnswered: number | undefined;
  /**
   * A request that arrived after the running one was answered but before the
   * handler got back to idle (its job still finishing): served on idle.
   */
  deferred: unknown;
  /** Largest frame this session's client accepts (its hello's `maxMessageSize`); the gateway's own limit when it did not say. */
  maxMessageSize: number | undefined;
  /** Last time anything arrived from this client (ms since epoch): the lease. */
  lastSeen = Date.now();
  /** Handed out in the welcome; every message of the session carries it in its delivery header. */
  readonly secret: Uint8Array = randomBytes(SECRET_BYTES);
  /** True once a message with the secret arrived: the client has its welcome. */
  proven = false;
  /** Numbering, acknowledgement and replay of everything this session sends and receives. */
  readonly channel: DeliveryChannel;
  /** Set when the channel passed its hard cap: the supervisor ends the session on its next sweep. */
  overflowed = false;
  readonly #outbox: Outbox;
  /** Where this session's messages go: numbered and kept by its delivery channel. */
  readonly #numbered: (frames: Frames) => void;

  constructor(handlerId: number, peer: Peer, outbox: Outbox, maxMessageSize?: number) {
    this.handlerId = handlerId;
    this.maxMessageSize = maxMessageSize;
    this.peer = peer;
    this.#outbox = outbox;
    this.#numbered = (frames) => this.channel.send(frames);
    this.channel = new DeliveryChannel({
      write: (frames, tag) => outbox.write(peer, frames, tag),
      onOverflow: () => {
        this.overflowed = true;
      },
    });
  }

  /** Sends outside the session's numbering (the welcome): the client's delivery layer is not set up yet. */
  notify(message: GatewayMessage): void {
    this.#outbox.send(this.peer, message);
  }

  /**
   * Tells the client the session is over (unnumbered, so it overtakes nothing
   * that matters any more) and stops its delivery: nothing is kept or replayed.
   */
  end(end: SessionEnd): void {
    try {
      this.#outbox.send(this.peer, { type: "session.ended", id: 0, code: end.code, message: end.message, reason: end.reason });
    } finally {
      this.channel.close();
    }
  }

  /**
   * Id of the request handed to the handler and not answered yet: a crash fails
   * it, a graceful stop waits for it. The session is its one owner: `begin` when
   * the dispatcher hands a request over, `reply` with its final answer ends it,
   * `cancel` when the caller gave up.
   */
  get inflight(): number | undefined {
    return this.#inflight;
  }

  /** A request goes to the handler now. */
  begin(id: number): void {
    this.#inflight = id;
  }

  /** The caller gave up on request `id` (its deadline passed). */
  cancel(id: number): void {
    if (this.#inflight === id) this.#inflight = undefined;
  }

  /** Stops the running job, if any, without answering (the session or handler is going away). */
  cancelJob(): void {
    const job = this.job;
    this.job = undefined;
    job?.cancel();
  }

  /**
   * Sends to this session's client, numbered (kept until acknowledged, replayed
   * after a reconnect); an answer to the request in flight clears it. Returns
   * false when the message was refused (see `Outbox.send`): the request then
   * got an `error`, which answers it too.
   */
  reply(message: GatewayMessage, raw?: Uint8Array): boolean {
    const sent = this.#outbox.send(this.peer, message, raw, this.maxMessageSize, this.#numbered);
    if (message.id !== 0 && (!sent || !IN_PROGRESS.has(message.type))) {
      this.lastAnswered = message.id;
      if (message.id === this.#inflight) this.#inflight = undefined;
    }
    return sent;
  }

  /** Sends a message that does not answer a request (e.g. stream items) if it can; else says why, sending nothing. */
  tryReply(message: GatewayMessage, raw?: Uint8Array): Refusal | undefined {
    return this.#outbox.trySend(this.peer, message, raw, this.maxMessageSize, this.#numbered);
  }

  /** Counts a refusal from `tryReply` that ends a request (the gateway's stats). */
  countRefusal(refusal: Refusal): void {
    this.#outbox.countRefusal(refusal);
  }
}

function addStats(into: DeliveryStats, from: DeliveryStats): void {
  into.sent += from.sent;
  into.resent += from.resent;
  into.resentBytes += from.resentBytes;
  into.duplicates += from.duplicates;
  into.gaps += from.gaps;
  into.replays += from.replays;
}

/** Ended sessions remembered (by routing id) for late resumes; the oldest are forgotten first. */
const REMEMBERED_ENDS = 4096;

/** Sessions by routing id and by handler actor id. Written only by the supervisor. */
export class SessionTable {
  readonly #byPeer = new Map<string, Session>();
  readonly #byActor = new Map<string, Session>();
  readonly #ended = new Map<string, SessionEnd>();
  /** Delivery counters of the sessions already removed (live ones are added in `deliveryStats()`). */
  readonly #pastDelivery: DeliveryStats = { sent: 0, resent: 0, resentBytes: 0, duplicates: 0, gaps: 0, replays: 0 };
  /** This gateway process's instance id, in every welcome and refusal: a different one means a restart. */
  readonly instance = randomBytes(4).readUInt32BE(0);

  get size(): number {
    return this.#byPeer.size;
  }

  byPeer(key: string): Session | undefined {
    return this.#byPeer.get(key);
  }

  byActor(actorId: string): Session | undefined {
    return this.#byActor.get(actorId);
  }

  add(session: Session): void {
    this.#byPeer.set(session.peer.key, session);
    this.#byActor.set(session.actorId, session);
  }

  /** Re-keys a session after its handler was replaced by a restart. */
  rekey(session: Session, oldActorId: string): void {
    this.#byActor.delete(oldActorId);
    this.#byActor.set(session.actorId, session);
  }

  /** Removes a session; with `end`, remembers why for a resume that comes too late. */
  remove(session: Session, end?: SessionEnd): void {
    if (this.#byPeer.get(session.peer.key) === session) {
      this.#byPeer.delete(session.peer.key);
      addStats(this.#pastDelivery, session.channel.stats);
    }
    this.#byActor.delete(session.actorId);
    if (end) {
      this.#ended.delete(session.peer.key);
      this.#ended.set(session.peer.key, end);
      if (this.#ended.size > REMEMBERED_ENDS) this.#ended.delete(this.#ended.keys().next().value!);
    }
  }

  /** What delivery did over this gateway's life: messages sent, resent after drops, duplicates and gaps dropped. */
  deliveryStats(): DeliveryStats {
    const total = { ...this.#pastDelivery };
    for (const session of this.#byPeer.values()) addStats(total, session.channel.stats);
    return total;
  }

  /** Why the session of this routing id ended, if it ended recently. */
  endOf(key: string): SessionEnd | undefined {
    return this.#ended.get(key);
  }

  all(): Session[] {
    return [...this.#byPeer.values()];
  }
}
