/**
 * The gateway's data plane: decode, validate, route, go on. It never awaits a
 * handler's work, so one slow client cannot stall the others, and nothing a
 * peer sends can throw out of it.
 */
import {
  ErrorCode,
  ProtocolError,
  decode,
  describeThrown,
  encode,
  parseClientMessage,
  type ClientMessage,
  type GatewayMessage,
} from "../protocol/index.js";
import type { Frames, Peer, ServerTransport } from "../transports/transport.js";
import type { HandlerEvent } from "./handler.js";
import type { Outbox, Refusal, SessionTable } from "./session.js";
import type { SupervisorEvent } from "./supervisor.js";

/**
 * Sees every valid message in and every message out, for metrics. Called on the
 * data plane: implementations must be cheap and must not throw. Without one,
 * the dispatcher and outbox do no work for it at all.
 */
export interface WireObserver {
  inbound(peer: Peer, message: ClientMessage, raw: Uint8Array | undefined): void;
  outbound(peer: Peer, message: GatewayMessage, raw: Uint8Array | undefined): void;
  /** The transport could not deliver to this peer: its session is gone. */
  lost(peer: Peer): void;
}

/** An observer's bug must not take the data plane down with it: counting is never worth a lost message. */
function observeSafely(call: () => void): void {
  try {
    call();
  } catch {
    // Dropped: a metric missed, nothing else.
  }
}

/** Replies the outbox refused to send as they were (each became an `error` to the request instead). */
export interface RefusedReplies {
  /** Larger than the session's `maxMessageSize` (SWARMNET_MESSAGE_TOO_LARGE). */
  tooLarge: number;
  /** The value could not be encoded as CBOR (SWARMNET_BAD_RESULT). */
  unencodable: number;
}

/**
 * Encodes envelopes for a server transport: encode or refuse. A message that
 * cannot be encoded (a function in a result, a throwing getter) or whose
 * frames exceed the limit is not sent; the request it answers gets an `error`
 * instead (BAD_RESULT / MESSAGE_TOO_LARGE), which is counted. `send` never
 * throws: nothing a subroutine returns can take the gateway down.
 */
export class WireOutbox implements Outbox {
  readonly #transport: ServerTransport;
  readonly #maxMessageSize: number;
  readonly refused: RefusedReplies = { tooLarge: 0, unencodable: 0 };
  #observer: WireObserver | undefined;
  constructor(transport: ServerTransport, maxMessageSize = Number.MAX_SAFE_INTEGER) {
    this.#transport = transport;
    this.#maxMessageSize = maxMessageSize;
  }
  /** Shows every message sent (after it passed the checks) to `observer` (metrics). */
  observe(observer: WireObserver): void {
    this.#observer = observer;
  }

  send(peer: Peer, message: GatewayMessage, raw?: Uint8Array, peerMaxMessageSize?: number): boolean {
    const refusal = this.trySend(peer, message, raw, peerMaxMessageSize);
    if (refusal !== undefined) this.countRefusal(refusal);
    // Our own error envelope always encodes and is small; without a request id there is nobody to tell.
    if (refusal !== undefined && message.id !== 0 && message.type !== "error") {
      const error: GatewayMessage = { type: "error", id: message.id, code: refusal.code, message: refusal.message };
      if (this.#observer !== undefined) observeSafely(() => this.#observer!.outbound(peer, error, undefined));
      this.#transport.send(peer, [encode(error)]);
    }
    return refusal === undefined;
  }

  countRefusal(refusal: Refusal): void {
    if (refusal.code === ErrorCode.MESSAGE_TOO_LARGE) this.refused.tooLarge++;
    else this.refused.unencodable++;
  }

  trySend(peer: Peer, message: GatewayMessage, raw?: Uint8Array, peerMaxMessageSize?: number): Refusal | undefined {
    const maxMessageSize = Math.min(peerMaxMessageSize ?? this.#maxMessageSize, this.#maxMessageSize);
    let envelope: Uint8Array;
    try {
      envelope = encode(message);
    } catch (err) {
      return { code: ErrorCode.BAD_RESULT, message: `${describeMessage(message)} cannot be encoded as CBOR: ${describeThrown(err).message}` };
    }
    const largest = Math.max(envelope.length, raw?.length ?? 0);
    if (largest > maxMessageSize) {
      return {
        code: ErrorCode.MESSAGE_TOO_LARGE,
        message: `${describeMessage(message)} is ${largest} bytes, over the maxMessageSize of ${maxMessageSize} bytes`,
      };
    }
    if (this.#observer !== undefined) observeSafely(() => this.#observer!.outbound(peer, message, raw));
    this.#transport.send(peer, raw === undefined ? [envelope] : [envelope, raw]);
    return undefined;
  }
}

function describeMessage(message: GatewayMessage): string {
  switch (message.type) {
    case "rpc.result":
      return "the result";
    case "stream.items":
      return "a stream item";
    default:
      return `a '${message.type}' message`;
  }
}

export interface DispatchTargets {
  supervisor: { send(event: SupervisorEvent): void };
  /** Requests addressed to the gateway itself (close it). */
  gateway: { send(event: { type: "remote.close"; peer: Peer; id: number }): void };
}

export interface DispatcherCounters {
  received: number;
  protocolErrors: number;
  sessionless: number;
}

/** How long one admin snapshot is reused: a flood of `admin.snapshot` costs one build per interval. */
export const ADMIN_SNAPSHOT_REUSE_MS = 100;

/** Recorded transitions after cursor `since`, the next cursor, and the statecharts when asked (`admin.watch`). */
export type AdminWatch = (
  since: number,
  machines: boolean,
) => { transitions: readonly unknown[]; next: number; machines?: Record<string, unknown> };

export class Dispatcher {
  readonly #table: SessionTable;
  readonly #outbox: Outbox;
  readonly #maxEnvelopeBytes: number;
  #targets: DispatchTargets | undefined;
  #refusal: { code: string; message: string } = { code: ErrorCode.GATEWAY_STOPPING, message: "gateway is not running" };
  #admin: (() => Record<string, unknown>) | undefined;
  #adminWatch: AdminWatch | undefined;
  #observer: WireObserver | undefined;
  #adminCache: { at: number; snapshot: Record<string, unknown> } | undefined;
  readonly counters: DispatcherCounters = { received: 0, protocolErrors: 0, sessionless: 0 };

  constructor(table: SessionTable, outbox: Outbox, maxEnvelopeBytes: number) {
    this.#table = table;
    this.#outbox = outbox;
    this.#maxEnvelopeBytes = maxEnvelopeBytes;
  }

  /** Starts routing to these actors (the gateway is running). */
  attach(targets: DispatchTargets): void {
    this.#targets = targets;
  }

  /** Stops accepting new sessions; requests on live sessions still route. */
  detach(code: string, message: string): void {
    this.#targets = undefined;
    this.#refusal = { code, message };
  }

  /**
   * Answers `admin.snapshot` with what `snapshot()` returns (the gateway's `admin: true`);
   * without it the request is refused with SWARMNET_ADMIN_DISABLED.
   */
  enableAdmin(snapshot: () => Record<string, unknown>, watch?: AdminWatch): void {
    this.#admin = snapshot;
    this.#adminWatch = watch;
  }

  /** Shows every valid inbound message and every lost peer to `observer` (metrics). */
  observe(observer: WireObserver): void {
    this.#observer = observer;
  }

  onUndeliverable(peer: Peer): void {
    if (this.#observer !== undefined) observeSafely(() => this.#observer!.lost(peer));
    this.#targets?.supervisor.send({ type: "session.lost", peerKey: peer.key });
  }

  onMessage(peer: Peer, frames: Frames): void {
    this.counters.received++;
    let message: ClientMessage;
    try {
      message = this.#parse(frames);
    } catch (err) {
      this.counters.protocolErrors++;
      // Only a peer with a session hears about its malformed frame; others are dropped
      // so that garbage from a stranger costs us nothing but the decode.
      if (this.#table.byPeer(peer.key) !== undefined) {
        this.#safeSend(peer, { type: "error", id: 0, code: ErrorCode.PROTOCOL, message: describeThrown(err).message });
      }
      return;
    }
    if (this.#observer !== undefined) observeSafely(() => this.#observer!.inbound(peer, message, frames[1]));
    const targets = this.#targets;
    const session = this.#table.byPeer(peer.key);
    switch (message.type) {
      case "hello":
        if (targets === undefined) {
          this.#safeSend(peer, {
            type: "refused",
            id: message.id,
            status: 503,
            code: this.#refusal.code,
            message: this.#refusal.message,
          });
        } else {
          targets.supervisor.send({ type: "session.open", peer, message });
        }
        return;
      case "admin.snapshot":
        // No session needed: the inspector takes no pool slot and still sees a full pool.
        // Who may ask is decided before this point: off unless `admin: true`, and with CURVE
        // only authorized keys complete the handshake at all.
        if (session !== undefined) session.lastSeen = Date.now();
        this.#answerAdmin(peer, message.id);
        return;
      case "admin.watch":
        if (session !== undefined) session.lastSeen = Date.now();
        this.#answerAdmin(peer, message.id, message);
        return;
      default:
        break;
    }
    if (session !== undefined) session.lastSeen = Date.now();
    if (message.type === "heartbeat") return;
    if (session?.ref === undefined) {
      this.counters.sessionless++;
      this.#safeSend(peer, {
        type: "error",
        id: message.id,
        code: ErrorCode.SESSION_ENDED,
        message: "no session for this connection: send hello first",
      });
      return;
    }
    switch (message.type) {
      case "ping":
        session.inflight = message.id;
        session.ref.send({ type: "ping", message });
        return;
      case "rpc.call":
        session.inflight = message.id;
        session.ref.send({ type: "rpc.call", message, raw: frames[1] });
        return;
      case "stream.open":
      case "file.list":
      case "file.get":
      case "file.put":
        // A request the handler runs as a job: a crash before its last answer fails it.
        session.inflight = message.id;
        session.ref.send({ type: message.type, message } as HandlerEvent);
        return;
      case "file.data":
      case "file.credit":
      case "file.error":
      case "stream.credit":
      case "stream.abort":
        // Data plane: straight to the running stream. Credit for a stream that already ended is normal; dropped.
        if (session.job?.id === message.id) session.job.onMessage(message, frames[1]);
        return;
      case "rpc.cancel":
        if (session.inflight === message.id) session.inflight = undefined;
        session.ref.send({ type: "rpc.cancel", message });
        return;
      case "session.close":
        session.ref.send({ type: "session.close", message });
        return;
      case "gateway.close":
        if (targets === undefined) {
          session.reply({ type: "gateway.closing", id: message.id });
        } else {
          targets.gateway.send({ type: "remote.close", peer, id: message.id });
        }
        return;
    }
  }

  #answerAdmin(peer: Peer, id: number, watch?: { since: number; machines?: true }): void {
    if (this.#admin === undefined || (watch !== undefined && this.#adminWatch === undefined)) {
      this.#safeSend(peer, { type: "error", id, code: ErrorCode.ADMIN_DISABLED, message: "this gateway does not answer admin requests (start it with admin: true / --admin)" });
      return;
    }
    const now = Date.now();
    try {
      if (this.#adminCache === undefined || now - this.#adminCache.at >= ADMIN_SNAPSHOT_REUSE_MS) {
        this.#adminCache = { at: now, snapshot: this.#admin() };
      }
      const snapshot = this.#adminCache.snapshot;
      if (watch === undefined) {
        this.#safeSend(peer, { type: "admin.snapshot.result", id, snapshot });
      } else {
        this.#safeSend(peer, { type: "admin.watch.result", id, snapshot, ...this.#adminWatch!(watch.since, watch.machines === true) });
      }
    } catch (err) {
      this.#safeSend(peer, { type: "error", id, code: ErrorCode.REMOTE, message: `snapshot failed: ${describeThrown(err).message}` });
    }
  }

  #parse(frames: Frames): ClientMessage {
    const envelope = frames[0];
    if (envelope === undefined || frames.length > 2) {
      throw new ProtocolError(`expected 1 or 2 frames, got ${frames.length}`);
    }
    if (envelope.length > this.#maxEnvelopeBytes) {
      throw new ProtocolError(`envelope of ${envelope.length} bytes exceeds ${this.#maxEnvelopeBytes}`);
    }
    return parseClientMessage(decode(envelope), frames.length === 2);
  }

  #safeSend(peer: Peer, message: GatewayMessage): void {
    try {
      this.#outbox.send(peer, message);
    } catch {
      // Our own error messages always encode; nothing to do if one does not.
    }
  }
}
