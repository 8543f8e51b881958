/**
 * A session is one client connection's claim on a handler. The supervisor
 * creates and removes sessions; the gateway's dispatcher only looks them up
 * to route frames, without a machine transition per frame.
 */
import type { GatewayMessage } from "../protocol/index.js";
import type { Peer } from "../transports/transport.js";
import type { HandlerActorRef } from "./handler.js";
import type { Job } from "./stream-job.js";

/**
 * Encodes and queues a message to one peer; never throws. Returns false when
 * the message was refused (not encodable, or a frame over `maxMessageSize`
 * bytes, the gateway's own limit by default) and the request it answers was
 * sent an `error` instead.
 */
export interface Outbox {
  send(peer: Peer, message: GatewayMessage, raw?: Uint8Array, maxMessageSize?: number): boolean;
  /** Like `send`, but a refused message is only reported (code and reason), nobody is told and nothing counted: the caller decides. */
  trySend(peer: Peer, message: GatewayMessage, raw?: Uint8Array, maxMessageSize?: number): Refusal | undefined;
  /** Counts a refusal the caller settled on (for `gateway.snapshot().replies`). */
  countRefusal(refusal: Refusal): void;
}

/** Why the outbox did not send a message: the error code and text the request should get. */
export interface Refusal {
  readonly code: string;
  readonly message: string;
}

/** Messages sent while a request is still running: they do not answer it (a crash must still fail it). */
const IN_PROGRESS: ReadonlySet<GatewayMessage["type"]> = new Set(["stream.items", "file.data", "file.credit", "file.ready"]);

export class Session {
  readonly handlerId: number;
  readonly peer: Peer;
  /** The live handler; replaced when the supervisor restarts a crashed one. */
  ref: HandlerActorRef | undefined;
  /** Actor id of the live handler (`handler-<slot>.<generation % 2>`). */
  actorId = "";
  /** The pool slot, reused once free: part of the actor id (ids must not grow without bound). */
  slot = 0;
  generation = 0;
  /** Times of the restarts inside the current restart window. */
  restarts: number[] = [];
  /** Id of the request handed to the handler and not answered yet: a crash fails it. */
  inflight: number | undefined;
  /** The stream or transfer the handler is running, fed directly by the dispatcher. */
  job: Job | undefined;
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
  readonly #outbox: Outbox;

  constructor(handlerId: number, peer: Peer, outbox: Outbox, maxMessageSize?: number) {
    this.handlerId = handlerId;
    this.maxMessageSize = maxMessageSize;
    this.peer = peer;
    this.#outbox = outbox;
  }

  /** Stops the running job, if any, without answering (the session or handler is going away). */
  cancelJob(): void {
    const job = this.job;
    this.job = undefined;
    job?.cancel();
  }

  /**
   * Sends to this session's client; an answer to the request in flight clears
   * it. Returns false when the message was refused (see `Outbox.send`): the
   * request then got an `error`, which answers it too.
   */
  reply(message: GatewayMessage, raw?: Uint8Array): boolean {
    const sent = this.#outbox.send(this.peer, message, raw, this.maxMessageSize);
    if (message.id !== 0 && (!sent || !IN_PROGRESS.has(message.type))) {
      this.lastAnswered = message.id;
      if (message.id === this.inflight) this.inflight = undefined;
    }
    return sent;
  }

  /** Sends a message that does not answer a request (e.g. stream items) if it can; else says why, sending nothing. */
  tryReply(message: GatewayMessage, raw?: Uint8Array): Refusal | undefined {
    return this.#outbox.trySend(this.peer, message, raw, this.maxMessageSize);
  }

  /** Counts a refusal from `tryReply` that ends a request (the gateway's stats). */
  countRefusal(refusal: Refusal): void {
    this.#outbox.countRefusal(refusal);
  }
}

/** Sessions by routing id and by handler actor id. Written only by the supervisor. */
export class SessionTable {
  readonly #byPeer = new Map<string, Session>();
  readonly #byActor = new Map<string, Session>();

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

  remove(session: Session): void {
    if (this.#byPeer.get(session.peer.key) === session) this.#byPeer.delete(session.peer.key);
    this.#byActor.delete(session.actorId);
  }

  all(): Session[] {
    return [...this.#byPeer.values()];
  }
}
