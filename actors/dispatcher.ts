/**
 * The gateway's data plane: decode, validate, route, go on. It never awaits a
 * handler's work, so one slow client cannot stall the others, and nothing a
 * peer sends can throw out of it.
 */
import {
  ErrorCode,
  ProtocolError,
  Status,
  decode,
  describeThrown,
  encode,
  errorReply,
  parseClientMessage,
  type ClientMessage,
  type GatewayMessage,
  type SubroutineInfo,
} from "../protocol/index.js";
import type { Frames, Peer, ServerTransport } from "../transports/transport.js";
import {
  Accept,
  CLIENT_HEADER_BYTES,
  LinkKind,
  afterHeader,
  headerAck,
  headerHasSecret,
  headerKind,
  headerSeq,
  isHeader,
  makeHeader,
} from "./delivery.js";
import type { DirectRequest, HandlerEvent } from "./handler-events.js";
import type { Outbox, Refusal, Session, SessionTable } from "./session.js";
import type { SupervisorEvent } from "./supervisor.js";

/**
 * Sees every valid message in and every message out, for metrics. Called on the
 * data plane: implementations must be cheap and must not throw. Without one,
 * the dispatcher and outbox do no work for it at all.
 */
export interface WireObserver {
  inbound(peer: Peer, message: ClientMessage, raw: Uint8Array | undefined): void;
  outbound(peer: Peer, message: GatewayMessage, raw: Uint8Array | undefined): void;
  /** The transport could not hand a message to this peer (it is kept for a replay; the session goes on). */
  lost(peer: Peer): void;
  /** A client came back after its link dropped (a RESUME); `replayed` messages go to it again. */
  resumed?(peer: Peer, replayed: number): void;
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

  send(peer: Peer, message: GatewayMessage, raw?: Uint8Array, peerMaxMessageSize?: number, via?: (frames: Frames) => void): boolean {
    const refusal = this.trySend(peer, message, raw, peerMaxMessageSize, via);
    if (refusal !== undefined) this.countRefusal(refusal);
    // Our own error envelope always encodes and is small; without a request id there is nobody to tell.
    if (refusal !== undefined && message.id !== 0 && message.type !== "error") {
      const error = errorReply(message.id, refusal.code, refusal.message);
      if (this.#observer !== undefined) observeSafely(() => this.#observer!.outbound(peer, error, undefined));
      if (via !== undefined) via([encode(error)]);
      else this.#transport.send(peer, [encode(error)]);
    }
    return refusal === undefined;
  }

  countRefusal(refusal: Refusal): void {
    if (refusal.code === ErrorCode.MESSAGE_TOO_LARGE) this.refused.tooLarge++;
    else this.refused.unencodable++;
  }

  /** Queues frames as they are (a delivery header first); a failure comes back to `onUndeliverable` with `tag`. */
  write(peer: Peer, frames: Frames, tag: number): void {
    this.#transport.send(peer, frames, tag);
  }

  /** `via`: where the frames go instead of the transport (a session's delivery channel, which numbers them). */
  trySend(
    peer: Peer,
    message: GatewayMessage,
    raw?: Uint8Array,
    peerMaxMessageSize?: number,
    via?: (frames: Frames) => void,
  ): Refusal | undefined {
    const maxMessageSize = Math.min(peerMaxMessageSize ?? this.#maxMessageSize, this.#maxMessageSize);
    let envelope: Uint8Array;
    try {
      envelope = encode(message);
    } catch (err) {
      return {
        code: ErrorCode.BAD_RESULT,
        message: `${describeMessage(message)} cannot be encoded as CBOR: ${describeThrown(err).message}`,
      };
    }
    const largest = Math.max(envelope.length, raw?.length ?? 0);
    if (largest > maxMessageSize) {
      return {
        code: ErrorCode.MESSAGE_TOO_LARGE,
        message: `${describeMessage(message)} is ${largest} bytes, over the maxMessageSize of ${maxMessageSize} bytes`,
      };
    }
    if (this.#observer !== undefined) observeSafely(() => this.#observer!.outbound(peer, message, raw));
    const frames = raw === undefined ? [envelope] : [envelope, raw];
    if (via !== undefined) via(frames);
    else this.#transport.send(peer, frames);
    return undefined;
  }
}

/** A send error that means "try again in a moment" rather than "the peer is gone". */
function isTransient(error: Error): boolean {
  return (error as { code?: string }).code === "EAGAIN";
}

/**
 * The `id` and `type` of an envelope that failed validation, as far as they can be read: the id
 * when the envelope is a CBOR map whose `id` is a uint32 (else 0), the type when it is a string.
 */
export function readableHead(envelope: Uint8Array | undefined): { id: number; type: string | undefined } {
  let value: unknown;
  try {
    value = envelope === undefined || envelope.length === 0 ? undefined : decode(envelope);
  } catch {
    return { id: 0, type: undefined };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array) return { id: 0, type: undefined };
  const { id, type } = value as { id?: unknown; type?: unknown };
  return {
    id: typeof id === "number" && Number.isInteger(id) && id >= 0 && id <= 0xffff_ffff ? id : 0,
    type: typeof type === "string" ? type : undefined,
  };
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
  /** Messages for a session without its secret (a stranger using its routing id); refused, session untouched. */
  strangers: number;
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
  #subroutines: () => readonly SubroutineInfo[] = () => [];
  #adminWatch: AdminWatch | undefined;
  #observer: WireObserver | undefined;
  #adminCache: { at: number; snapshot: Record<string, unknown> } | undefined;
  readonly counters: DispatcherCounters = { received: 0, protocolErrors: 0, sessionless: 0, strangers: 0 };

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

  /** Shows every valid inbound message and every undeliverable send to `observer` (metrics). */
  observe(observer: WireObserver): void {
    this.#observer = observer;
  }

  /** Answers `subroutine.list` (session or not) with what `list()` returns. */
  listSubroutinesWith(list: () => readonly SubroutineInfo[]): void {
    this.#subroutines = list;
  }

  /**
   * A message could not be handed to `peer`. Its session is not ended for it: the
   * message stays in the session's delivery buffer until the client resumes (or the
   * lease decides), and a full queue is retried in a moment.
   */
  onUndeliverable(peer: Peer, error: Error, tag: number): void {
    if (this.#observer !== undefined) observeSafely(() => this.#observer!.lost(peer));
    this.#table.byPeer(peer.key)?.channel.failed(tag, isTransient(error));
  }

  onMessage(peer: Peer, frames: Frames): void {
    this.counters.received++;
    const first = frames[0];
    if (isHeader(first) && first.length >= CLIENT_HEADER_BYTES && first[1]! >= LinkKind.DATA && first[1]! <= LinkKind.REFUSED) {
      this.#onDelivery(peer, first, frames);
      return;
    }
    let message: ClientMessage;
    try {
      message = this.#parse(frames, 0);
    } catch (err) {
      this.counters.protocolErrors++;
      const { id, type } = readableHead(frames[0]);
      if (type === "hello") {
        // A hello the gateway cannot accept is answered, never met with silence (the client
        // would see only its connect deadline): refused 400 with what was wrong.
        this.#safeSend(peer, {
          type: "refused",
          id,
          status: Status.BAD_REQUEST,
          code: ErrorCode.PROTOCOL,
          message: describeThrown(err).message,
        });
        return;
      }
      // Only a peer with a session hears about its malformed frame; others are dropped
      // so that garbage from a stranger costs us nothing but the decode.
      if (this.#table.byPeer(peer.key) !== undefined) {
        this.#safeSend(peer, errorReply(id, ErrorCode.PROTOCOL, describeThrown(err).message));
      }
      return;
    }
    const session = this.#table.byPeer(peer.key);
    switch (message.type) {
      case "hello":
      case "admin.snapshot":
      case "admin.watch":
        this.#route(peer, message, frames[1], undefined);
        return;
      case "heartbeat":
        return;
      default:
        break;
    }
    if (session !== undefined) {
      // Everything inside a session carries a delivery header with the session's secret.
      this.counters.strangers++;
      this.#safeSend(
        peer,
        errorReply(
          message.id,
          ErrorCode.RESUME_REFUSED,
          "messages of a session need its delivery header (seq, ack and the secret from its welcome)",
        ),
      );
      return;
    }
    this.#route(peer, message, frames[1], undefined);
  }

  /** A message with a delivery header: check the secret, acknowledge, number, then route. */
  #onDelivery(peer: Peer, header: Uint8Array, frames: Frames): void {
    const session = this.#table.byPeer(peer.key);
    if (session === undefined) {
      // The session is gone (lease, stop, close) or this is a restarted gateway that never had it.
      this.counters.sessionless++;
      const end = this.#table.endOf(peer.key);
      this.#refuse(
        peer,
        end?.code ?? ErrorCode.SESSION_ENDED,
        end?.reason ?? "unknown",
        end?.message ?? "this gateway has no session for this connection (it restarted, or the session ended long ago)",
      );
      return;
    }
    if (!headerHasSecret(header, session.secret)) {
      // Someone else on this routing id: refuse, stop sending there until the owner is back.
      this.counters.strangers++;
      session.channel.pause();
      this.#refuse(peer, ErrorCode.RESUME_REFUSED, "refused", "not the owner of this session: its secret does not match");
      return;
    }
    session.proven = true;
    session.lastSeen = Date.now();
    const channel = session.channel;
    const ack = headerAck(header);
    switch (headerKind(header)) {
      case LinkKind.DATA: {
        // The owner is talking on a live pipe: whatever could not be sent meanwhile goes now.
        if (!channel.up) channel.replayFrom(ack);
        else channel.onAck(ack);
        if (channel.accept(headerSeq(header), frames[1]?.length ?? 0) !== Accept.DELIVER) return;
        this.#deliver(peer, session, header, frames);
        return;
      }
      case LinkKind.UNNUMBERED:
        channel.onAck(ack);
        this.#deliver(peer, session, header, frames);
        return;
      case LinkKind.RESUME:
        // Answer first (with what we have), then replay what the client lacks, in order.
        channel.control(LinkKind.RESUMED);
        {
          const replayed = channel.replayFrom(ack);
          if (this.#observer !== undefined) observeSafely(() => this.#observer!.resumed?.(peer, replayed));
        }
        return;
      case LinkKind.REPLAY:
        channel.replayFrom(ack);
        return;
      case LinkKind.ACK:
        // The owner is back on a live pipe (a heartbeat after a drop): what it lacks goes now.
        if (!channel.up) channel.replayFrom(ack);
        else channel.onBareAck(ack);
        // Always answered: the client's own retransmission check runs on these (see onBareAck).
        channel.control(LinkKind.ACK);
        return;
      default:
        return;
    }
  }

  /** The envelope after the header (and the raw frame, if any) of a numbered message, parsed and routed. */
  #deliver(peer: Peer, session: Session, first: Uint8Array, frames: Frames): void {
    let message: ClientMessage;
    try {
      if (frames.length > 2) throw new ProtocolError(`expected 1 or 2 frames, got ${frames.length}`);
      message = this.#decode(afterHeader(first, true), frames.length === 2);
    } catch (err) {
      this.counters.protocolErrors++;
      // The error names the request when its id could be read, so the client fails that call.
      this.#safeReply(session, errorReply(readableHead(afterHeader(first, true)).id, ErrorCode.PROTOCOL, describeThrown(err).message));
      return;
    }
    this.#route(peer, message, frames[1], session);
  }

  #refuse(peer: Peer, code: string, reason: string, message: string): void {
    try {
      const body = encode({ type: "link.refused", id: 0, code, message, reason, gw: this.#table.instance });
      this.#outbox.write(peer, [makeHeader(LinkKind.REFUSED, 0, 0, undefined, body)], 0);
    } catch {
      // Always encodable.
    }
  }

  /** Routes a parsed message; `session` is set when it came numbered inside one. */
  #route(peer: Peer, message: ClientMessage, raw: Uint8Array | undefined, viaSession: Session | undefined): void {
    if (this.#observer !== undefined) observeSafely(() => this.#observer!.inbound(peer, message, raw));
    const targets = this.#targets;
    const session = viaSession;
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
      case "subroutine.list":
        if (session !== undefined) session.lastSeen = Date.now();
        this.#safeSend(peer, { type: "subroutine.listing", id: message.id, subroutines: this.#subroutines() });
        return;
      case "admin.snapshot":
        // No session needed: the inspector takes no pool slot and still sees a full pool.
        // Who may ask is decided before this point: off unless `admin: true`, and with CURVE
        // only authorized keys complete the handshake at all.
        this.#answerAdmin(peer, message.id, session);
        return;
      case "admin.watch":
        this.#answerAdmin(peer, message.id, session, message);
        return;
      default:
        break;
    }
    if (message.type === "heartbeat") return;
    if (session?.ref === undefined) {
      this.counters.sessionless++;
      this.#safeSend(peer, errorReply(message.id, ErrorCode.SESSION_ENDED, "no session for this connection: send hello first"));
      return;
    }
    switch (message.type) {
      case "ping":
      case "rpc.call": {
        session.begin(message.id);
        // Data plane first (no handler transition); the handler machine when it is not idle or observed.
        const request: DirectRequest = message.type === "ping" ? { type: "ping", message } : { type: "rpc.call", message, raw };
        if (session.direct?.(request) !== true) session.ref.send(request);
        return;
      }
      case "stream.open":
      case "file.list":
      case "file.get":
      case "file.put":
        // A request the handler runs as a job: a crash before its last answer fails it.
        session.begin(message.id);
        session.ref.send({ type: message.type, message } as HandlerEvent);
        return;
      case "file.data":
      case "file.credit":
      case "file.error":
      case "stream.credit":
      case "stream.abort":
        // Data plane: straight to the running stream. Credit for a stream that already ended is normal; dropped.
        if (session.job?.id === message.id) session.job.onMessage(message, raw);
        return;
      case "rpc.cancel":
        session.cancel(message.id);
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

  /** Answers an admin request (`admin.snapshot`, or `admin.watch` with `watch`): inside a session (numbered) when it came in one, else plainly. */
  #answerAdmin(peer: Peer, id: number, session: Session | undefined, watch?: { since: number; machines?: true }): void {
    const answer = (message: GatewayMessage): void => (session ? this.#safeReply(session, message) : this.#safeSend(peer, message));
    if (this.#admin === undefined || (watch !== undefined && this.#adminWatch === undefined)) {
      answer(errorReply(id, ErrorCode.ADMIN_DISABLED, "this gateway does not answer admin requests (start it with admin: true / --admin)"));
      return;
    }
    const now = Date.now();
    try {
      if (this.#adminCache === undefined || now - this.#adminCache.at >= ADMIN_SNAPSHOT_REUSE_MS) {
        this.#adminCache = { at: now, snapshot: this.#admin() };
      }
      const snapshot = this.#adminCache.snapshot;
      if (watch === undefined) {
        answer({ type: "admin.snapshot.result", id, snapshot });
      } else {
        answer({ type: "admin.watch.result", id, snapshot, ...this.#adminWatch!(watch.since, watch.machines === true) });
      }
    } catch (err) {
      answer(errorReply(id, ErrorCode.REMOTE, `snapshot failed: ${describeThrown(err).message}`));
    }
  }

  /** `[envelope]` or `[envelope, raw]`, validated. */
  #parse(frames: Frames, at: number): ClientMessage {
    const envelope = frames[at];
    if (envelope === undefined || frames.length > at + 2) {
      throw new ProtocolError(`expected 1 or 2 frames, got ${frames.length - at}`);
    }
    return this.#decode(envelope, frames.length === at + 2);
  }

  #decode(envelope: Uint8Array, hasRaw: boolean): ClientMessage {
    if (envelope.length > this.#maxEnvelopeBytes) {
      throw new ProtocolError(`envelope of ${envelope.length} bytes exceeds ${this.#maxEnvelopeBytes}`);
    }
    return parseClientMessage(decode(envelope), hasRaw);
  }

  #safeReply(session: Session, message: GatewayMessage): void {
    try {
      session.reply(message);
    } catch {
      // Our own messages always encode.
    }
  }

  #safeSend(peer: Peer, message: GatewayMessage): void {
    try {
      this.#outbox.send(peer, message);
    } catch {
      // Our own error messages always encode; nothing to do if one does not.
    }
  }
}
