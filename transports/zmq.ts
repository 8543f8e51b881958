/**
 * ZeroMQ transports: a ROUTER for the gateway, one DEALER (one TCP connection)
 * per client. Only this file, the runtime entry and the CLI import `zeromq`.
 */
import { randomBytes } from "node:crypto";
import { Dealer, Router, context } from "zeromq";
import { publishLink } from "./diagnostics.js";
import { SendQueue } from "./send-queue.js";
import { registerZapDomain, unregisterZapDomain, type ZapCounters } from "./zap.js";
import type {
  ClientTransport,
  ClientTransportHandlers,
  ClientTransportOptions,
  AttemptFailure,
  Frames,
  Peer,
  ServerTransport,
  ServerTransportHandlers,
  ServerTransportOptions,
  ServerTransportStats,
  TransportFactory,
} from "./transport.js";

/**
 * libzmq calls can fail with EINTR when a signal lands mid-syscall (a profiler's
 * SIGPROF does it all the time); they are retried, a bounded number of times.
 */
function retryOnEintr<T>(attempt: () => T, tries = 10): T {
  for (let i = 1; ; i++) {
    try {
      return attempt();
    } catch (err) {
      if ((err as { code?: string }).code !== "EINTR" || i >= tries) throw err;
    }
  }
}

/** How long listen() keeps trying a fixed port that is still being released. */
const BIND_RETRY_MS = 1_000;
/** One turn of the event loop (timers and I/O get to run). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function isClosedSocketError(err: unknown, socket: { closed: boolean }): boolean {
  const code = (err as { code?: string }).code;
  return socket.closed || code === "ETERM" || code === "ENOTSOCK";
}

/** ZMTP heartbeats: handled by ZeroMQ's I/O thread, so a busy event loop cannot starve them. */
export const DEFAULT_ZMTP_HEARTBEAT_MS = 1_000;

let zapDomains = 0;

/**
 * ZeroMQ's default context allows 1,023 sockets; each client uses a DEALER and
 * a monitor pair for its link events, so a thousand clients in one process (a
 * swarm controller, the W6 benchmark) would hit it. Raised once, as far as
 * libzmq allows, before this module creates any socket.
 */
const WANTED_MAX_SOCKETS = 65_536;
try {
  if (context.maxSockets < WANTED_MAX_SOCKETS) context.maxSockets = Math.min(WANTED_MAX_SOCKETS, context.maxSocketsLimit);
} catch {
  // An embedding application may have configured the context itself: keep its choice.
}

export class ZmqServerTransport implements ServerTransport {
  readonly #options: ServerTransportOptions;
  #socket: Router | undefined;
  #queue: SendQueue<{ peer: Peer; tag: number }> | undefined;
  #zapDomain: string | undefined;
  #zap: ZapCounters | undefined;
  readonly #stats = { handshakes: 0, protocolFailures: 0 };
  #closing = false;

  constructor(options: ServerTransportOptions) {
    this.#options = options;
  }

  async listen(handlers: ServerTransportHandlers): Promise<string> {
    const curve = this.#options.curve;
    if (curve) {
      this.#zapDomain = `swarmnet-${process.pid}-${++zapDomains}`;
      this.#zap = await registerZapDomain(this.#zapDomain, curve.authorizedKeys);
    }
    const heartbeat = this.#options.heartbeatIntervalMs ?? DEFAULT_ZMTP_HEARTBEAT_MS;
    const socket = new Router({
      // A message that cannot be routed is an error (EHOSTUNREACH), never a silent drop.
      mandatory: true,
      // Clients pick unique routing ids and keep them across reconnects: a client back from a
      // network blip takes over its own session instead of being refused as a duplicate.
      handover: true,
      heartbeatInterval: heartbeat,
      heartbeatTimeout: heartbeat * 3,
      ...(curve
        ? { curveServer: true, curveSecretKey: curve.secretKey, curvePublicKey: curve.publicKey, zapDomain: this.#zapDomain! }
        : {}),
      // Never let one peer with a full queue block the writer shared by all peers: a full
      // queue is reported as EAGAIN and that session's delivery retries in a moment.
      sendTimeout: 0,
      // No message count limit per peer: what is queued for a peer is bounded by the credit
      // windows of its streams and transfers (and one answer per request), so a large window
      // never overflows a fixed queue of 1,000 messages.
      sendHighWaterMark: 0,
      linger: 0,
      maxMessageSize: this.#options.maxMessageSize,
    });
    this.#socket = socket;
    this.#queue = new SendQueue<{ peer: Peer; tag: number }>(
      (frames) => socket.send(frames as Uint8Array[]),
      (to, err) => handlers.onUndeliverable(to.peer, err, to.tag),
    );
    const events = retryOnEintr(() => socket.events);
    events.on("handshake", () => void this.#stats.handshakes++);
    events.on("handshake:error:protocol", () => void this.#stats.protocolFailures++);
    const host = this.#options.host.includes(":") ? `[${this.#options.host}]` : this.#options.host;
    // EINTR is retried at once. EADDRINUSE on a fixed port is retried for a moment: a gateway
    // restarted in the same process right after stop() can find the port still held while
    // ZeroMQ's I/O thread finishes closing the old listener. A port really in use still fails.
    const deadline = Date.now() + BIND_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        await socket.bind(`tcp://${host}:${this.#options.port}`);
        break;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === "EINTR" && attempt < 10) continue;
        if (code === "EADDRINUSE" && this.#options.port !== 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 25));
          continue;
        }
        socket.close();
        const domain = this.#zapDomain;
        this.#zapDomain = undefined;
        if (domain) await unregisterZapDomain(domain);
        throw err;
      }
    }
    void this.#receiveLoop(socket, handlers);
    return socket.lastEndpoint ?? `tcp://${host}:${this.#options.port}`;
  }

  async #receiveLoop(socket: Router, handlers: ServerTransportHandlers): Promise<void> {
    while (!socket.closed) {
      let message: Buffer[];
      try {
        message = await socket.receive();
      } catch (err) {
        if (this.#closing || isClosedSocketError(err, socket)) return;
        // A failed receive rejects at once: retrying in a bare loop would spin on microtasks
        // and starve the event loop (and the close that would end it). Yield a turn first.
        await nextTurn();
        continue;
      }
      const id = message[0];
      if (id === undefined) continue;
      const peer: Peer = { id, key: id.toString("latin1") };
      try {
        handlers.onMessage(peer, message.slice(1));
      } catch {
        // A routing bug must not end the receive loop that serves every client.
      }
    }
  }

  send(peer: Peer, frames: Frames, tag = 0): void {
    this.#queue?.push([peer.id, ...frames], { peer, tag });
  }

  flush(timeoutMs: number): Promise<void> {
    return this.#queue?.drained(timeoutMs) ?? Promise.resolve();
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#queue?.close();
    const socket = this.#socket;
    // No unbind() first: with pipes still attached, libzmq 4.3.5 can abort on an assertion in
    // pipe.cpp. close() lets ZeroMQ's I/O thread release the port a moment later; listen()
    // retries a port still being released.
    if (socket && !socket.closed) socket.close();
    const domain = this.#zapDomain;
    this.#zapDomain = undefined;
    if (domain) await unregisterZapDomain(domain);
  }

  stats(): ServerTransportStats {
    return { ...this.#stats, authFailures: this.#zap?.refused ?? 0 };
  }
}

/**
 * A client with nothing in flight stops holding the event loop once it has
 * had no message for this long (its receive is armed with this timeout).
 */
export const PARK_AFTER_MS = 500;
/** How often a parked client looks for a message that arrived meanwhile (an unref'd timer). */
const PARKED_CHECK_MS = 250;

/** Monitor events that end a handshake: the peer refused our keys or mechanism, or closed the connection mid-handshake. */
const HANDSHAKE_FAILURES: Record<string, string> = {
  "handshake:error:auth": "the gateway did not authorize this client's CURVE key",
  "handshake:error:protocol": "CURVE on one side only (mechanism mismatch) or not a ZeroMQ peer",
  "handshake:error:other": "the gateway closed the connection during the handshake (wrong server public key?)",
};

function readable(socket: Dealer): boolean {
  try {
    return !socket.closed && socket.readable;
  } catch {
    return false;
  }
}

/**
 * One client's connection. Its DEALER is monitored (link up/down, refused
 * attempts, failed handshakes) from connecting until the client is first
 * idle. A socket monitor's read holds the event loop and cannot be stopped
 * safely on its own (closing a zeromq.js Observer while its socket lives can
 * block libzmq's I/O thread), so a client idle for PARK_AFTER_MS swaps its
 * socket, once, for an unmonitored one with the same routing id (the
 * gateway's ROUTER hands the session over) and keeps that one. Idle, nothing
 * of it holds the event loop: a script that forgets `close()` still exits.
 * From then on no monitor watches the link; the delivery layer notices a
 * gateway gone quiet (no answer to its heartbeats) and asks `probe()`, which
 * makes a throwaway monitored connection to tell a dead link from a busy
 * gateway.
 */
export class ZmqClientTransport implements ClientTransport {
  readonly #endpoint: string;
  readonly #options: ClientTransportOptions;
  /** This connection's routing id: unique per client, kept across ZeroMQ's reconnects and by every socket it opens (see the ROUTER's handover). */
  readonly routingId = `c${randomBytes(12).toString("hex")}`;
  #socket: Dealer | undefined;
  #queue: SendQueue<null> | undefined;
  #monitored = false;
  /** Probes in progress (their `finish`), ended by close(). */
  readonly #probes = new Set<(up: boolean) => void>();
  /** The monitor's last word on the current socket was a disconnect. */
  #linkDown = false;
  /** Nothing in flight (see `idle()`); connecting counts as busy. */
  #idle = false;
  #closed = false;
  /** Resumes a parked receive loop. */
  #wake: (() => void) | undefined;
  /** Sockets swapped out, still read until drained (a `session.ended` may wait there), then closed. */
  readonly #retired = new Set<Dealer>();

  constructor(endpoint: string, options: ClientTransportOptions) {
    this.#endpoint = endpoint;
    this.#options = options;
  }

  start(handlers: ClientTransportHandlers): void {
    this.#open(handlers, true);
  }

  /**
   * A DEALER with this client's routing id, connected, read, with its own
   * writer; `monitored` watches its link. Replaces the current one, which is
   * read until drained and then closed; what was queued to send on it is
   * dropped (at most a heartbeat: swaps happen only with nothing in flight).
   */
  #open(handlers: ClientTransportHandlers, monitored: boolean): void {
    const old = this.#socket;
    const oldQueue = this.#queue;
    let socket: Dealer;
    try {
      socket = retryOnEintr(() => this.#createSocket());
    } catch (err) {
      // e.g. "Too many open file descriptors": the client fails with that cause, the controller goes on.
      queueMicrotask(() => handlers.onError(err as Error));
      return;
    }
    this.#socket = socket;
    this.#monitored = monitored && (handlers.onLink !== undefined || handlers.onAttemptFailed !== undefined);
    if (this.#monitored) this.#watch(socket, handlers);
    this.#queue = new SendQueue<null>(
      (frames) => socket.send(frames as Uint8Array[]),
      (_tag, err) => {
        if (this.#socket === socket) handlers.onError(err);
      },
    );
    oldQueue?.close();
    if (old && !old.closed) {
      this.#retired.add(old);
      this.#wake?.(); // a parked loop of the old socket drains it and closes it
    }
    try {
      retryOnEintr(() => socket.connect(this.#endpoint));
    } catch (err) {
      queueMicrotask(() => handlers.onError(err as Error));
      return;
    }
    void this.#receiveLoop(socket, handlers);
  }

  #createSocket(): Dealer {
    const curve = this.#options.curve;
    const heartbeat = this.#options.heartbeatIntervalMs ?? DEFAULT_ZMTP_HEARTBEAT_MS;
    // linger 0: a client that gives up (timeout, close) must not deliver a stale
    // hello later, which would hold a pool slot for nobody.
    return new Dealer({
      linger: 0,
      maxMessageSize: this.#options.maxMessageSize,
      routingId: this.routingId,
      heartbeatInterval: heartbeat,
      heartbeatTimeout: heartbeat * 3,
      // A pending receive holds the event loop; an idle client gives it up after this (see #park).
      receiveTimeout: PARK_AFTER_MS,
      ...(curve ? { curveServerKey: curve.serverPublicKey, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey } : {}),
    });
  }

  /**
   * Link up/down and failed attempts, from the socket's monitor (ended by
   * closing the socket, never by hand). A swapped-out socket's events (its own
   * disconnect as it closes) are not the client's link: ignored.
   */
  #watch(socket: Dealer, handlers: ClientTransportHandlers): void {
    const current = (): boolean => this.#socket === socket && !this.#closed;
    const onLink = (up: boolean): void => {
      if (current()) handlers.onLink?.(up);
    };
    const onAttemptFailed = (failure: AttemptFailure): void => {
      if (current()) handlers.onAttemptFailed?.(failure);
    };
    // Whether the TCP connection of the current attempt was made: a retry without one was refused.
    let tcpUp = false;
    // Making the monitor can be interrupted by a signal (e.g. a profiler's SIGPROF): EINTR, retried.
    const events = retryOnEintr(() => socket.events);
    events.on("connect:delay", () => void (tcpUp = false));
    events.on("connect", () => void (tcpUp = true));
    events.on("connect:retry", () => {
      if (!tcpUp) onAttemptFailed?.({ kind: "refused", detail: "connection refused" });
    });
    events.on("handshake", () => {
      if (current()) this.#linkDown = false;
      onLink?.(true);
    });
    events.on("disconnect", () => {
      if (current()) this.#linkDown = true;
      onLink?.(false);
    });
    for (const [type, detail] of Object.entries(HANDSHAKE_FAILURES)) {
      events.on(type as "handshake:error:auth", () => {
        onAttemptFailed({ kind: "handshake", detail });
        // A reconnect that fails its handshake (e.g. a gateway back with other CURVE keys) is no link.
        onLink(false);
      });
    }
  }

  async #receiveLoop(socket: Dealer, handlers: ClientTransportHandlers): Promise<void> {
    while (!socket.closed) {
      if (this.#socket !== socket && !readable(socket)) {
        // Swapped out and drained. Closing the socket ends its monitor too (it reads "end" and closes itself).
        this.#retired.delete(socket);
        socket.close();
        return;
      }
      let message: Buffer[];
      try {
        message = await socket.receive();
      } catch (err) {
        if (isClosedSocketError(err, socket)) return;
        if ((err as { code?: string }).code === "EAGAIN") {
          // receiveTimeout: nothing arrived for PARK_AFTER_MS.
          if (this.#idle && !this.#closed && this.#socket === socket) await this.#park(socket, handlers);
          continue;
        }
        await nextTurn();
        continue;
      }
      try {
        handlers.onMessage(message);
      } catch {
        // Keep receiving; the client machine reports its own failures.
      }
    }
  }

  /**
   * Idle and quiet: a monitored socket is swapped for an unmonitored one
   * (this loop ends with it); an unmonitored one stops reading until the
   * client is busy again, or an unref'd timer sees a message waiting (e.g.
   * `session.ended`). Heartbeats go on either way.
   */
  async #park(socket: Dealer, handlers: ClientTransportHandlers): Promise<void> {
    // A link that is down stays watched: an unmonitored socket could not say when it is back.
    if (this.#monitored && this.#linkDown) return;
    if (this.#monitored) {
      this.#open(handlers, false);
      publishLink("parked", this.routingId);
      return;
    }
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearInterval(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      const timer = setInterval(() => {
        if (socket.closed || !this.#idle || this.#socket !== socket || readable(socket)) done();
      }, PARKED_CHECK_MS);
      timer.unref();
      this.#wake = done;
    });
  }

  idle(idle: boolean): void {
    this.#idle = idle;
    if (!idle) this.#wake?.();
    // No swap back to a monitored socket: a socket with this routing id that is still connecting
    // when another takes over can win the ROUTER's handover late and strand the reply.
  }

  send(frames: Frames): void {
    this.#queue?.push(frames, null);
  }

  /**
   * Can the gateway be reached? A monitored socket says so through its
   * events: undefined. A parked one cannot tell (its own connection may be
   * reconnecting or dead), so a throwaway DEALER (same CURVE keys, no
   * routing id, no message sent: the gateway opens no session) connects and
   * is closed again: true once its ZMTP handshake completes, false when the
   * connection is refused, the handshake fails, or `timeoutMs` passes.
   */
  probe(timeoutMs: number): Promise<boolean | undefined> {
    if (this.#monitored || this.#closed) return Promise.resolve(undefined);
    let socket: Dealer;
    try {
      const curve = this.#options.curve;
      socket = retryOnEintr(
        () =>
          new Dealer({
            linger: 0,
            ...(curve ? { curveServerKey: curve.serverPublicKey, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey } : {}),
          }),
      );
    } catch {
      return Promise.resolve(false); // e.g. out of file descriptors
    }
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const finish = (up: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#probes.delete(finish);
        socket.close();
        resolve(up);
      };
      // close() ends a probe at once: its socket and timer must not keep the process alive.
      this.#probes.add(finish);
      const timer = setTimeout(() => finish(false), timeoutMs);
      let tcpUp = false;
      // Making the monitor can be interrupted by a signal (e.g. a profiler's SIGPROF): EINTR, retried.
      const events = retryOnEintr(() => socket.events);
      events.on("connect:delay", () => void (tcpUp = false));
      events.on("connect", () => void (tcpUp = true));
      events.on("connect:retry", () => {
        if (!tcpUp) finish(false);
      });
      events.on("handshake", () => finish(true));
      for (const type of Object.keys(HANDSHAKE_FAILURES)) events.on(type as "handshake:error:auth", () => finish(false));
      try {
        retryOnEintr(() => socket.connect(this.#endpoint));
      } catch {
        finish(false);
      }
    });
  }

  close(): void {
    this.#closed = true;
    for (const finish of [...this.#probes]) finish(false);
    this.#queue?.close();
    for (const socket of [this.#socket, ...this.#retired]) if (socket && !socket.closed) socket.close();
    this.#retired.clear();
    this.#wake?.();
  }
}

/** The production transport: ZeroMQ ROUTER/DEALER over TCP. */
export const zmqTransport: TransportFactory = {
  server: (options) => new ZmqServerTransport(options),
  client: (endpoint, options) => new ZmqClientTransport(endpoint, options),
};
