/**
 * Delivery inside a session: ZMTP does not redeliver what a dead TCP
 * connection held, so swarmnet numbers, acknowledges and replays on its own.
 *
 * Every message of a session (after the welcome) travels as
 * `[delivery header + envelope][raw?]`: the header is a small fixed binary
 * prefix of the first frame (no CBOR, and no extra ZeroMQ frame: it is built
 * and read on every message):
 *
 *   byte 0      0x00 marker (a CBOR envelope is a map and never starts with 0x00)
 *   byte 1      kind (LinkKind)
 *   bytes 2-5   seq: this message's number in the sender's sequence (uint32 BE; 0 = unnumbered)
 *   bytes 6-9   ack: the highest seq the sender has received in order from its peer
 *   bytes 10-17 client -> gateway only: the session secret from the welcome (proof of ownership)
 *
 * A `DeliveryChannel` is one direction pair of one session, on either end: it
 * numbers what it sends, keeps it until the peer acknowledges it, drops what
 * the peer acknowledged, replays the rest on request (a reconnect or a gap),
 * and on the receiving side delivers each number exactly once and in order: a
 * duplicate is dropped, a gap is never delivered past (the sender is asked to
 * replay from the last number received). Acks ride on every message either way
 * (credit grants, answers, requests), so acknowledging costs no extra message
 * while traffic flows; an idle side sends a bare `ACK` now and then.
 *
 * Memory: what a channel keeps is bounded by the credit windows of the streams
 * and transfers above it (a producer never runs more than a window ahead of the
 * consumer's grants) plus one answer per request; a hard cap on top of that
 * fails the session loudly (`onOverflow`) instead of dropping anything.
 */
import type { Frames } from "../transports/transport.js";

/** What a delivery header frame carries. */
export const LinkKind = {
  /** A numbered message: an envelope (and raw frame) follow. */
  DATA: 1,
  /** An unnumbered message with an envelope (goodbyes sent by a closing link). */
  UNNUMBERED: 2,
  /** Client -> gateway after a reconnect: "I am back, I have everything up to `ack`". */
  RESUME: 3,
  /** Gateway -> client: resume accepted; `ack` is what the gateway has. Both sides replay the rest. */
  RESUMED: 4,
  /** Either way: a gap was seen; replay everything after `ack`. */
  REPLAY: 5,
  /** A bare acknowledgement (the client's heartbeat; the gateway's answer when it has something to ack). */
  ACK: 6,
  /** Gateway -> client: no such session (ended, or a restarted gateway) or not yours; a CBOR envelope follows. */
  REFUSED: 7,
} as const;
export type LinkKind = (typeof LinkKind)[keyof typeof LinkKind];

/** Bytes in a gateway -> client header. */
export const HEADER_BYTES = 10;
/** Bytes in a client -> gateway header (with the 8-byte session secret). */
export const CLIENT_HEADER_BYTES = 18;
/** Bytes of a session secret. */
export const SECRET_BYTES = 8;

/** True if `frame` starts with a delivery header (as opposed to a plain CBOR envelope). */
export function isHeader(frame: Uint8Array | undefined): frame is Uint8Array {
  return frame !== undefined && frame.length >= HEADER_BYTES && frame[0] === 0;
}

function readU32(f: Uint8Array, at: number): number {
  return ((f[at]! << 24) >>> 0) + (f[at + 1]! << 16) + (f[at + 2]! << 8) + f[at + 3]!;
}

function writeU32(f: Uint8Array, at: number, v: number): void {
  f[at] = v >>> 24;
  f[at + 1] = (v >>> 16) & 0xff;
  f[at + 2] = (v >>> 8) & 0xff;
  f[at + 3] = v & 0xff;
}

export function headerKind(f: Uint8Array): number {
  return f[1]!;
}
export function headerSeq(f: Uint8Array): number {
  return readU32(f, 2);
}
export function headerAck(f: Uint8Array): number {
  return readU32(f, 6);
}

/** True if a client header carries `secret`. */
export function headerHasSecret(f: Uint8Array, secret: Uint8Array): boolean {
  if (f.length < CLIENT_HEADER_BYTES) return false;
  for (let i = 0; i < SECRET_BYTES; i++) if (f[HEADER_BYTES + i] !== secret[i]) return false;
  return true;
}

/**
 * Builds a first frame: the header (18 bytes with `secret`, the client's; else
 * 10) followed by `body` (an envelope), in one allocation.
 */
export function makeHeader(kind: LinkKind, seq: number, ack: number, secret?: Uint8Array, body?: Uint8Array): Uint8Array {
  const size = secret ? CLIENT_HEADER_BYTES : HEADER_BYTES;
  const f = Buffer.allocUnsafe(size + (body?.length ?? 0));
  f[0] = 0;
  f[1] = kind;
  writeU32(f, 2, seq);
  writeU32(f, 6, ack);
  if (secret) f.set(secret.subarray(0, SECRET_BYTES), HEADER_BYTES);
  if (body) f.set(body, size);
  return f;
}

/** The envelope after a header (a view, no copy). */
export function afterHeader(f: Uint8Array, clientHeader: boolean): Uint8Array {
  return f.subarray(clientHeader ? CLIENT_HEADER_BYTES : HEADER_BYTES);
}

/** Counters of one channel, for snapshots, tests and the soak run. */
export interface DeliveryStats {
  /** Numbered messages sent for the first time. */
  sent: number;
  /** Numbered messages sent again (replays after a reconnect or a gap). */
  resent: number;
  /** Bytes (envelope and raw frames) of those replays. */
  resentBytes: number;
  /** Numbered messages received that were already delivered (dropped). */
  duplicates: number;
  /** Numbered messages received past a gap (dropped; a replay was asked for). */
  gaps: number;
  /** Replays started (reconnects, gaps, transient send failures). */
  replays: number;
}

/** How receiving one numbered message went. */
export const Accept = { DELIVER: 0, DUPLICATE: 1, GAP: 2 } as const;
export type Accept = (typeof Accept)[keyof typeof Accept];

/** Hard caps of what one channel keeps unacknowledged; past them the session fails loudly. */
export const MAX_UNACKED_MESSAGES = 1 << 21;
export const MAX_UNACKED_BYTES = 1 << 30;
/** A gap is asked to be replayed once; again only if nothing came of it for this long. */
const RENACK_MS = 500;
/** A bare ACK goes out after this many messages (or bytes) received without one riding on anything sent. */
const ACK_EVERY_MESSAGES = 128;
const ACK_EVERY_BYTES = 4 * 1024 * 1024;
/** After a transient send failure (the peer's queue is full), try again this soon. */
const RETRY_MS = 2;
/** Send tags are `epoch * EPOCH_SPAN + seq` (seq is a uint32). */
const EPOCH_SPAN = 2 ** 32;

export interface DeliveryChannelOptions {
  /**
   * Hands frames (header first) to the transport. `tag` names the message for
   * `failed()`: 0 for unnumbered ones, else the seq and the replay epoch it was
   * sent in (so a failure reported late, from before a replay, is ignored).
   */
  write(frames: Frames, tag: number): void;
  /** Client side: the session secret, carried in every header. */
  secret?: Uint8Array | undefined;
  /** Called once when the unacknowledged messages exceed the caps. */
  onOverflow?: (() => void) | undefined;
  maxMessages?: number;
  maxBytes?: number;
}

function bytesOf(frames: Frames): number {
  let n = 0;
  for (const f of frames) n += f.length;
  return n;
}

/** How long bare ACKs may show no progress over messages already sent before those are replayed (see onBareAck). */
export const STALL_MS = 2_000;

export class DeliveryChannel {
  readonly #o: DeliveryChannelOptions;
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  // Sending side: entries[head + i] holds seq baseSeq + i.
  #entries: Array<Frames | undefined> = [];
  #head = 0;
  #baseSeq = 1;
  #nextSeq = 1;
  #nextToSend = 1;
  #highestSent = 0;
  #bufferedBytes = 0;
  #up = true;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;
  #overflowed = false;

  /** True once the cap was passed (the session is being ended). */
  get overflowed(): boolean {
    return this.#overflowed;
  }
  /** Bumped on every replay: failures of sends from an earlier epoch are stale. */
  #epoch = 0;
  // Receiving side.
  #received = 0;
  #ackSent = 0;
  #nackedAt = 0;
  #nackTime = 0;
  /** Received (delivered) since our last message carried an ack: past a bound, a bare ACK goes out. */
  #recvSinceAck = 0;
  #recvBytesSinceAck = 0;
  readonly stats: DeliveryStats = { sent: 0, resent: 0, resentBytes: 0, duplicates: 0, gaps: 0, replays: 0 };

  constructor(options: DeliveryChannelOptions) {
    this.#o = options;
    this.#maxMessages = options.maxMessages ?? MAX_UNACKED_MESSAGES;
    this.#maxBytes = options.maxBytes ?? MAX_UNACKED_BYTES;
  }

  /** Highest seq received in order (what this side acknowledges). */
  get received(): number {
    return this.#received;
  }

  /** Messages sent and not yet acknowledged. */
  get unacked(): number {
    return this.#nextSeq - this.#baseSeq;
  }

  /** Bytes of messages sent and not yet acknowledged. */
  get unackedBytes(): number {
    return this.#bufferedBytes;
  }

  /** False while the link is down: messages are kept, not sent. */
  get up(): boolean {
    return this.#up;
  }

  /** Something was received in order that the peer has not seen acknowledged yet. */
  get owesAck(): boolean {
    return this.#received > this.#ackSent;
  }

  /** Numbers `frames` (envelope, raw?), keeps them until acknowledged, and sends them if the link is up. */
  send(frames: Frames): void {
    if (this.#closed) return;
    const seq = this.#nextSeq++;
    this.#entries.push(frames);
    this.#bufferedBytes += bytesOf(frames);
    if (this.unacked > this.#maxMessages || this.#bufferedBytes > this.#maxBytes) {
      // Past the cap the session is over: say so once, keep nothing more (never a silent drop).
      this.#overflowed = true;
      this.close();
      this.#o.onOverflow?.();
      return;
    }
    if (this.#up && this.#nextToSend === seq) this.#pump();
  }

  /** Sends a control message (with an optional envelope) at once, up or not: it is not kept. */
  control(kind: LinkKind, body?: Uint8Array): void {
    if (this.#closed) return;
    this.#acked();
    this.#o.write([makeHeader(kind, 0, this.#received, this.#o.secret, body)], 0);
  }

  /** The peer has everything up to `ack`: forget it. */
  onAck(ack: number): void {
    if (ack < this.#baseSeq) return;
    const last = Math.min(ack, this.#nextSeq - 1);
    while (this.#baseSeq <= last) {
      const frames = this.#entries[this.#head];
      if (frames) this.#bufferedBytes -= bytesOf(frames);
      this.#entries[this.#head++] = undefined;
      this.#baseSeq++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
    if (this.#nextToSend < this.#baseSeq) this.#nextToSend = this.#baseSeq;
  }

  /**
   * A numbered message arrived: deliver it (the next in order), drop it (seen
   * before), or drop it and ask for a replay (a gap: something before it was lost).
   */
  accept(seq: number, bytes = 0): Accept {
    if (seq === this.#received + 1) {
      this.#received = seq;
      // A one-way flow (an upload's chunks, a stream's large items) gets a bare ACK now and then,
      // so the sender's buffer (and what a drop makes it resend) stays small.
      this.#recvBytesSinceAck += bytes;
      if (++this.#recvSinceAck >= ACK_EVERY_MESSAGES || this.#recvBytesSinceAck >= ACK_EVERY_BYTES) this.control(LinkKind.ACK);
      return Accept.DELIVER;
    }
    if (seq <= this.#received) {
      this.stats.duplicates++;
      return Accept.DUPLICATE;
    }
    this.stats.gaps++;
    const expected = this.#received + 1;
    const now = Date.now();
    if (this.#nackedAt !== expected || now - this.#nackTime >= RENACK_MS) {
      this.#nackedAt = expected;
      this.#nackTime = now;
      this.control(LinkKind.REPLAY);
    }
    return Accept.GAP;
  }

  // The last bare ACK that showed progress: its ack, the highest seq sent by then, and when.
  #probeAck = -1;
  #probeSent = 0;
  #probeTime = 0;

  /**
   * A bare ACK arrived (a client's heartbeat, or the gateway's answer to one): the
   * retransmission timer of this layer. If bare ACKs have acknowledged nothing more
   * for `STALL_MS` while messages sent before that time are still unacknowledged,
   * they went down with a connection nobody reported (ZeroMQ replaced it while the
   * socket was not monitored): replay them. A spurious replay costs only duplicates,
   * which the receiver drops.
   */
  onBareAck(ack: number, now = Date.now()): void {
    // While the link is down, replays wait for the resume handshake (a second replay would resend a window twice).
    if (!this.#up) {
      this.onAck(ack);
      return;
    }
    const stalled = ack === this.#probeAck && ack < this.#probeSent && now - this.#probeTime >= STALL_MS;
    if (stalled) this.replayFrom(ack);
    else this.onAck(ack);
    if (stalled || ack !== this.#probeAck) {
      this.#probeAck = ack;
      this.#probeSent = this.#nextToSend - 1;
      this.#probeTime = now;
    }
  }

  /** The link went down: keep everything, send nothing until `replayFrom`. */
  pause(): void {
    this.#up = false;
    clearTimeout(this.#retry);
    this.#retry = undefined;
  }

  /** The peer has everything up to `ack` and is listening: replay the rest, in order, and go on. Returns how many are replayed. */
  replayFrom(ack: number): number {
    if (this.#closed) return 0;
    this.onAck(ack);
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#nextToSend = this.#baseSeq;
    this.#up = true;
    this.#epoch++;
    const replayed = this.#nextSeq - this.#nextToSend;
    if (replayed > 0) this.stats.replays++;
    this.#pump();
    return replayed;
  }

  /**
   * The transport could not hand message `seq` to the peer. `transient` (its
   * queue is full): retry in a moment from there. Otherwise the peer is gone
   * (for now): keep everything until it resumes.
   */
  failed(tag: number, transient: boolean): void {
    const seq = tag % EPOCH_SPAN;
    if (this.#closed || seq === 0 || seq < this.#baseSeq || (tag - seq) / EPOCH_SPAN !== this.#epoch) return;
    if (seq < this.#nextToSend) this.#nextToSend = seq;
    this.#up = false;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    if (transient) {
      this.#retry = setTimeout(() => {
        this.#retry = undefined;
        if (this.#closed) return;
        this.#up = true;
        this.#epoch++;
        this.stats.replays++;
        this.#pump();
      }, RETRY_MS);
      this.#retry.unref();
    }
  }

  /** Drops everything; nothing more is sent (the session is over). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#entries = [];
    this.#head = 0;
    this.#bufferedBytes = 0;
  }

  /** The message being sent carries our ack. */
  #acked(): void {
    this.#ackSent = this.#received;
    this.#recvSinceAck = 0;
    this.#recvBytesSinceAck = 0;
  }

  #pump(): void {
    while (this.#up && !this.#closed && this.#nextToSend < this.#nextSeq) {
      const seq = this.#nextToSend++;
      const frames = this.#entries[this.#head + (seq - this.#baseSeq)];
      if (frames === undefined) continue;
      if (seq <= this.#highestSent) {
        this.stats.resent++;
        this.stats.resentBytes += bytesOf(frames);
      } else {
        this.#highestSent = seq;
        this.stats.sent++;
      }
      this.#acked();
      const first = makeHeader(LinkKind.DATA, seq, this.#received, this.#o.secret, frames[0]);
      this.#o.write(frames.length === 1 ? [first] : [first, ...frames.slice(1)], this.#epoch * EPOCH_SPAN + seq);
    }
  }
}
