/**
 * A session is one client connection's claim on a handler. The supervisor
 * creates and removes sessions; the gateway's dispatcher only looks them up
 * to route frames, without a machine transition per frame.
 */
import type { GatewayMessage } from "../protocol/index.js";
import type { Peer } from "../transports/transport.js";
import type { HandlerActorRef } from "./handler.js";
import type { Job } from "./stream-job.js";

/** Encodes and queues a message to one peer; never throws. */
export interface Outbox {
  send(peer: Peer, message: GatewayMessage, raw?: Uint8Array): void;
}

/** Messages sent while a request is still running: they do not answer it (a crash must still fail it). */
const IN_PROGRESS: ReadonlySet<GatewayMessage["type"]> = new Set(["stream.items", "file.data", "file.credit", "file.ready"]);

export class Session {
  readonly handlerId: number;
  readonly peer: Peer;
  /** The live handler; replaced when the supervisor restarts a crashed one. */
  ref: HandlerActorRef | undefined;
  /** Actor id of the live handler (`handler-<id>.<generation>`). */
  actorId = "";
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
  /** Last time anything arrived from this client (ms since epoch): the lease. */
  lastSeen = Date.now();
  readonly #outbox: Outbox;

  constructor(handlerId: number, peer: Peer, outbox: Outbox) {
    this.handlerId = handlerId;
    this.peer = peer;
    this.#outbox = outbox;
  }

  /** Stops the running job, if any, without answering (the session or handler is going away). */
  cancelJob(): void {
    const job = this.job;
    this.job = undefined;
    job?.cancel();
  }

  /** Sends to this session's client; an answer to the request in flight clears it. */
  reply(message: GatewayMessage, raw?: Uint8Array): void {
    if (message.id !== 0 && !IN_PROGRESS.has(message.type)) {
      this.lastAnswered = message.id;
      if (message.id === this.inflight) this.inflight = undefined;
    }
    this.#outbox.send(this.peer, message, raw);
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
