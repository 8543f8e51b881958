/**
 * What the actors need from a transport, and nothing ZeroMQ-specific: the
 * actors import only these types, so they run just as well over the
 * in-memory transport in unit tests.
 *
 * A message is a list of frames: `[envelope]` or `[envelope, raw]`.
 */

export type Frames = readonly Uint8Array[];

/** A connected client as the server side sees it. */
export interface Peer {
  /** Routing id bytes (ZeroMQ assigns them: never reused while the pipe lives). */
  readonly id: Uint8Array;
  /** The same id as a string, for map keys. */
  readonly key: string;
}

export interface ServerTransportHandlers {
  onMessage(peer: Peer, frames: Frames): void;
  /**
   * A message to `peer` could not be handed over: the peer is gone (`EHOSTUNREACH`)
   * or its queue is full (`EAGAIN`). `tag` is what `send` was given with it.
   */
  onUndeliverable(peer: Peer, error: Error, tag: number): void;
}

/** Connection-level counters of a server transport (handshakes, refusals). */
export interface ServerTransportStats {
  /** Connections that completed the ZMTP handshake (and CURVE, when on). */
  handshakes: number;
  /** CURVE clients whose key is not authorized. */
  authFailures: number;
  /** Peers that failed the handshake otherwise (e.g. a plain client at a CURVE gateway). */
  protocolFailures: number;
}

export interface ServerTransport {
  /** Binds and starts receiving; resolves with the endpoint actually bound (port 0 resolved). */
  listen(handlers: ServerTransportHandlers): Promise<string>;
  /** Queues a message; never throws, failures go to `onUndeliverable` with `tag` (default 0). */
  send(peer: Peer, frames: Frames, tag?: number): void;
  /** Resolves once every queued message has been handed to the socket (bounded by `timeoutMs`). */
  flush(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
  stats(): ServerTransportStats;
}

export interface ClientTransportHandlers {
  onMessage(frames: Frames): void;
  /** The transport failed for good (not a transient reconnect). */
  onError(error: Error): void;
  /** The connection to the gateway went down (false) or (re)connected (true); ZeroMQ reconnects by itself. */
  onLink?(up: boolean): void;
  /**
   * A connection attempt failed, as the socket monitor reports it: `refused`
   * (no TCP connection: nothing listens, or unreachable; ZeroMQ retries by
   * itself) or `handshake` (the peer closed the ZMTP/CURVE handshake: a key
   * not authorized, a wrong server key, CURVE on one side only).
   */
  onAttemptFailed?(failure: AttemptFailure): void;
}

/** Why one connection attempt failed (see `ClientTransportHandlers.onAttemptFailed`). */
export interface AttemptFailure {
  readonly kind: "refused" | "handshake";
  /** What the monitor said, e.g. "handshake:error:auth" or "mechanism mismatch". */
  readonly detail: string;
}

export interface ClientTransport {
  start(handlers: ClientTransportHandlers): void;
  /**
   * Whether the client has nothing in flight. An idle transport must not keep
   * the process alive (a script that forgets `close()` still exits); it still
   * takes messages while the process runs for other reasons, and delivers
   * what arrived once it is busy again.
   */
  idle?(idle: boolean): void;
  /**
   * Whether the gateway can be reached, for a link that has gone quiet or is
   * down: undefined at once when a socket monitor watches the link (its
   * `onLink` events are the truth); otherwise a throwaway connection is made
   * and true means it completed its handshake within `timeoutMs` (the
   * gateway's ZeroMQ I/O thread answers even while its JavaScript is busy).
   * Absent: the transport cannot tell, and a quiet link is taken as up.
   */
  probe?(timeoutMs: number): Promise<boolean | undefined>;
  /** Queues a message; never throws. */
  send(frames: Frames): void;
  close(): void;
}

/** CURVE on the gateway: its key pair and the client public keys it lets in (Z85 strings). */
export interface ServerCurve {
  publicKey: string;
  secretKey: string;
  authorizedKeys: readonly string[];
}

/** CURVE on a client: its key pair and the gateway's public key (Z85 strings). */
export interface ClientCurve {
  publicKey: string;
  secretKey: string;
  serverPublicKey: string;
}

export interface ServerTransportOptions {
  host: string;
  port: number;
  maxMessageSize: number;
  curve?: ServerCurve | undefined;
  /** ZMTP heartbeat interval; a peer silent for 3 intervals is disconnected (off the JS thread). */
  heartbeatIntervalMs?: number;
}

export interface ClientTransportOptions {
  maxMessageSize: number;
  curve?: ClientCurve | undefined;
  heartbeatIntervalMs?: number;
}

/** Picks the wire: ZeroMQ in production, in-memory in unit tests. */
export interface TransportFactory {
  server(options: ServerTransportOptions): ServerTransport;
  client(endpoint: string, options: ClientTransportOptions): ClientTransport;
}
