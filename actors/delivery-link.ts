/**
 * The client's end of delivery: a ClientTransport wrapped around the wire
 * (ZeroMQ's DEALER, or the in-memory one) that numbers, acknowledges and
 * replays everything of the session once the gateway welcomed it, and watches
 * the link:
 *
 *   link down (socket monitor)      keep everything, send nothing; the lease clock starts
 *   gateway quiet (2 heartbeats     probe the gateway (`ClientTransport.probe`): reached, it is
 *     unanswered, no monitor)       busy and we wait; not reached, the link is down since the
 *                                   last word heard, and probes go on until it is back
 *   link up again (handshake)       RESUME (secret + what we have) until RESUMED comes back;
 *                                   then both sides replay what the other lacks, in order
 *   down past the lease             the session is over: `session.ended` (reason "lease")
 *   REFUSED (resume or a message)   the session is over: reason from the gateway, or
 *                                   "restarted" when a gateway of another instance answers
 *
 * The session's end reaches the client machine as an ordinary `session.ended`
 * message, so the machine's one path for it settles whatever is in flight.
 * Heartbeats (bare ACKs with the secret) go from here, every `livenessMs / 3`;
 * the gateway answers each one, so silence is news.
 */
import { ErrorCode, decode, encode, sessionSilenceMs, type SessionEndReason } from "../protocol/index.js";
import { publishLink } from "../transports/diagnostics.js";
import type { ClientTransport, ClientTransportHandlers, Frames } from "../transports/transport.js";
import {
  Accept,
  DeliveryChannel,
  LinkKind,
  SECRET_BYTES,
  afterHeader,
  headerAck,
  headerKind,
  headerSeq,
  isHeader,
  type DeliveryStats,
} from "./delivery.js";

/** What a client's delivery did: the channel's counters plus link events. */
export interface LinkStats extends DeliveryStats {
  /** Times the link came back after going down. */
  reconnects: number;
  /** Resumes the gateway accepted. */
  resumes: number;
}

/** How often a RESUME is repeated while no RESUMED came back (a reconnect refused and retried by ZeroMQ). */
const RESUME_RETRY_MS = 500;

interface SessionInfo {
  readonly secret: Uint8Array;
  readonly gw: number | undefined;
  readonly livenessMs: number;
}

export class DeliveryLink implements ClientTransport {
  readonly #inner: ClientTransport;
  #handlers: ClientTransportHandlers | undefined;
  #session: SessionInfo | undefined;
  #channel: DeliveryChannel | undefined;
  #linkUp = true;
  #ended = false;
  #closed = false;
  #heartbeat: NodeJS.Timeout | undefined;
  #lease: NodeJS.Timeout | undefined;
  #resume: NodeJS.Timeout | undefined;
  /** Messages heard from the gateway (any kind): a heartbeat tick that sees no change counts a quiet period. */
  #heard = 0;
  #heardAtTick = 0;
  /** When the last heartbeat tick saw something new heard (ms since epoch). */
  #lastHeardAt = 0;
  #quietTicks = 0;
  #probing = false;
  #reconnects = 0;
  #resumes = 0;

  readonly #observe: ((up: boolean) => void) | undefined;

  /** `options.onLink` hears every link event too (the controller's view of which gateways are up). */
  constructor(inner: ClientTransport, options: { onLink?: (up: boolean) => void } = {}) {
    this.#inner = inner;
    this.#observe = options.onLink;
  }

  /** The wrapped transport (e.g. to read its routing id). */
  get inner(): ClientTransport {
    return this.#inner;
  }

  /** Counters of this session's delivery (zeros before the welcome). */
  get stats(): LinkStats {
    const base = this.#channel?.stats ?? { sent: 0, resent: 0, resentBytes: 0, duplicates: 0, gaps: 0, replays: 0 };
    return { ...base, reconnects: this.#reconnects, resumes: this.#resumes };
  }

  start(handlers: ClientTransportHandlers): void {
    this.#handlers = handlers;
    this.#inner.start({
      onMessage: (frames) => this.#onMessage(frames),
      onError: (error) => handlers.onError(error),
      onLink: (up) => {
        this.#onLink(up);
        this.#observe?.(up);
        handlers.onLink?.(up);
      },
      onAttemptFailed: (failure) => handlers.onAttemptFailed?.(failure),
    });
  }

  /** Passed on: an idle inner transport may stop holding the event loop. */
  idle(idle: boolean): void {
    this.#inner.idle?.(idle);
  }

  send(frames: Frames): void {
    if (this.#closed || this.#ended) return;
    if (this.#channel) this.#channel.send(frames);
    else this.#inner.send(frames);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopTimers();
    this.#channel?.close();
    this.#inner.close();
  }

  #onMessage(frames: Frames): void {
    if (this.#closed) return;
    this.#heard++;
    const first = frames[0];
    if (!isHeader(first)) {
      // Outside the numbering: the welcome, refusals, session.ended, errors about no session.
      if (this.#session === undefined) this.#peekWelcome(first);
      this.#handlers?.onMessage(frames);
      return;
    }
    const channel = this.#channel;
    if (channel === undefined || this.#ended) return;
    const ack = headerAck(first);
    switch (headerKind(first)) {
      case LinkKind.DATA:
        channel.onAck(ack);
        if (channel.accept(headerSeq(first), frames[1]?.length ?? 0) === Accept.DELIVER) this.#deliver(first, frames);
        return;
      case LinkKind.UNNUMBERED:
        channel.onAck(ack);
        this.#deliver(first, frames);
        return;
      case LinkKind.RESUMED:
        this.#resumes++;
        clearInterval(this.#resume);
        this.#resume = undefined;
        clearTimeout(this.#lease);
        this.#lease = undefined;
        channel.replayFrom(ack);
        return;
      case LinkKind.REPLAY:
        channel.replayFrom(ack);
        return;
      case LinkKind.ACK:
        channel.onBareAck(ack);
        return;
      case LinkKind.REFUSED:
        this.#onRefused(afterHeader(first, false));
        return;
      default:
        return;
    }
  }

  /** The envelope after the header, and the raw frame if any, to the client machine. */
  #deliver(first: Uint8Array, frames: Frames): void {
    const envelope = afterHeader(first, false);
    this.#handlers?.onMessage(frames.length === 1 ? [envelope] : [envelope, ...frames.slice(1)]);
  }

  #peekWelcome(envelope: Uint8Array | undefined): void {
    if (envelope === undefined) return;
    let m: { type?: unknown; secret?: unknown; gw?: unknown; livenessMs?: unknown };
    try {
      m = decode(envelope) as typeof m;
    } catch {
      return; // the client machine reports malformed frames
    }
    if (m === null || typeof m !== "object" || m.type !== "welcome") return;
    if (!(m.secret instanceof Uint8Array) || m.secret.length !== SECRET_BYTES || typeof m.livenessMs !== "number") return;
    const session: SessionInfo = { secret: m.secret, gw: typeof m.gw === "number" ? m.gw : undefined, livenessMs: m.livenessMs };
    this.#session = session;
    this.#channel = new DeliveryChannel({
      write: (frames) => this.#inner.send(frames),
      secret: session.secret,
      onOverflow: () => this.#end("overflow", ErrorCode.DELIVERY_OVERFLOW, "more unacknowledged messages than the delivery layer's cap"),
    });
    // The lease is the gateway's; heartbeat at a third of it, off the call path, so a client busy
    // in user code between calls (or a slow stream consumer) keeps its session.
    this.#lastHeardAt = Date.now();
    const periodMs = Math.max(10, Math.floor(session.livenessMs / 3));
    // A probe may take up to a whole lease: on a slow link a handshake takes several round trips, and a
    // verdict is needed only before the lease is gone.
    this.#heartbeat = setInterval(() => this.#tick(session.livenessMs), periodMs);
    this.#heartbeat.unref();
  }

  /**
   * A heartbeat period: send a heartbeat, and watch the gateway's answers.
   * Two periods with nothing heard while the link is up, or any period while
   * it is down, ask the transport to probe the gateway (a transport whose
   * monitor watches the link answers at once that its events are the truth).
   */
  #tick(probeTimeoutMs: number): void {
    if (this.#ended || this.#closed) return;
    const now = Date.now();
    if (this.#heard !== this.#heardAtTick) {
      this.#heardAtTick = this.#heard;
      this.#lastHeardAt = now;
      this.#quietTicks = 0;
      // Taken as down by a probe, but the gateway's messages come through: the link works (a slow one).
      if (!this.#linkUp && this.#lease !== undefined && this.#inner.probe !== undefined) this.#probeAnswered(true);
    } else if (this.#linkUp) {
      this.#quietTicks++;
    }
    if (this.#linkUp) this.#channel?.control(LinkKind.ACK);
    if (!this.#linkUp || this.#quietTicks >= 2) this.#probe(probeTimeoutMs);
  }

  #probe(timeoutMs: number): void {
    const probe = this.#inner.probe;
    if (this.#probing || probe === undefined) return;
    this.#probing = true;
    const routingId = this.#routingId();
    if (this.#linkUp) publishLink("quiet", routingId);
    void probe.call(this.#inner, timeoutMs).then((up) => {
      this.#probing = false;
      if (up === undefined) {
        // A monitor watches the link: its events say down and up.
        this.#quietTicks = 0;
        return;
      }
      publishLink("probed", routingId, up);
      this.#probeAnswered(up);
    });
  }

  #probeAnswered(up: boolean): void {
    if (this.#ended || this.#closed) return;
    if (up) {
      this.#quietTicks = 0;
      // Down (a failed probe, or a monitor's disconnect before the socket stopped being watched): resume.
      if (!this.#linkUp) this.#onLink(true);
    } else if (this.#linkUp) {
      // Down since the last word heard: the gateway's lease on us has run as long.
      this.#onLink(false, this.#silenceLeftMs());
    }
  }

  /** What is left of the silence the session may go through (`sessionSilenceMs`), counted from the last word heard. */
  #silenceLeftMs(): number {
    return Math.max(0, this.#lastHeardAt + sessionSilenceMs(this.#session?.livenessMs ?? 0) - Date.now());
  }

  #routingId(): string | undefined {
    const id = (this.#inner as { routingId?: unknown }).routingId;
    return typeof id === "string" ? id : undefined;
  }

  /** The link went down or came back; `leaseLeftMs`: how much of the lease is left (all of it by default). */
  #onLink(up: boolean, leaseLeftMs?: number): void {
    const channel = this.#channel;
    const session = this.#session;
    if (channel === undefined || session === undefined || this.#ended || this.#closed) {
      this.#linkUp = up;
      return;
    }
    if (!up) {
      if (this.#linkUp) publishLink("down", this.#routingId());
      this.#linkUp = false;
      channel.pause();
      clearInterval(this.#resume);
      this.#resume = undefined;
      // Past the gateway's lease the session is gone for sure: fail everything now, once. A monitor's
      // disconnect may come seconds after the gateway fell silent (ZMTP's heartbeat timeout): the lease
      // then runs from the last word heard, if that ends sooner.
      if (this.#lease === undefined) {
        const graceMs = session.livenessMs;
        const leftMs = leaseLeftMs ?? Math.min(graceMs, this.#silenceLeftMs());
        this.#lease = setTimeout(
          () => this.#end("lease", ErrorCode.LEASE_EXPIRED, `no word from the gateway for longer than the session's lease (${graceMs} ms)`),
          leftMs,
        );
        this.#lease.unref();
      }
      return;
    }
    this.#quietTicks = 0;
    if (this.#linkUp && this.#lease === undefined) return; // a first handshake, or nothing changed
    publishLink("up", this.#routingId());
    this.#linkUp = true;
    this.#reconnects++;
    channel.control(LinkKind.RESUME);
    clearInterval(this.#resume);
    this.#resume = setInterval(() => channel.control(LinkKind.RESUME), RESUME_RETRY_MS);
    this.#resume.unref();
  }

  #onRefused(body: Uint8Array | undefined): void {
    let m: { code?: unknown; message?: unknown; reason?: unknown; gw?: unknown } = {};
    try {
      if (body && body.length > 0) m = decode(body) as typeof m;
    } catch {
      // A refusal we cannot read is still a refusal.
    }
    const gw = typeof m.gw === "number" ? m.gw : undefined;
    const restarted = gw !== undefined && this.#session?.gw !== undefined && gw !== this.#session.gw;
    const code = typeof m.code === "string" ? m.code : ErrorCode.SESSION_ENDED;
    const message = typeof m.message === "string" ? m.message : "the gateway refused this session";
    if (restarted) {
      this.#end("restarted", ErrorCode.SESSION_ENDED, `the gateway restarted and does not know this session (${message})`);
      return;
    }
    const reason = typeof m.reason === "string" ? (m.reason as SessionEndReason) : "unknown";
    this.#end(reason, code, message);
  }

  /** The session is over: everything kept is dropped and the client machine hears it as `session.ended`. */
  #end(reason: SessionEndReason, code: string, message: string): void {
    if (this.#ended || this.#closed) return;
    this.#ended = true;
    this.#stopTimers();
    this.#channel?.close();
    this.#handlers?.onMessage([encode({ type: "session.ended", id: 0, code, message, reason })]);
  }

  #stopTimers(): void {
    clearInterval(this.#heartbeat);
    clearTimeout(this.#lease);
    clearInterval(this.#resume);
    this.#heartbeat = undefined;
    this.#lease = undefined;
    this.#resume = undefined;
  }
}
