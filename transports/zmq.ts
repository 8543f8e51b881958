/**
 * ZeroMQ transports: a ROUTER for the gateway, one DEALER (one TCP connection)
 * per client. Only this file, the runtime entry and the CLI import `zeromq`.
 */
import { randomBytes } from "node:crypto";
import { Dealer, Router, context } from "zeromq";
import { SendQueue } from "./send-queue.js";
import { registerZapDomain, unregisterZapDomain, type ZapCounters } from "./zap.js";
import type {
  ClientTransport,
  ClientTransportHandlers,
  ClientTransportOptions,
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
      ...(curve ? { curveServer: true, curveSecretKey: curve.secretKey, curvePublicKey: curve.publicKey, zapDomain: this.#zapDomain! } : {}),
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
    socket.events.on("handshake", () => void this.#stats.handshakes++);
    socket.events.on("handshake:error:protocol", () => void this.#stats.protocolFailures++);
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

export class ZmqClientTransport implements ClientTransport {
  /** This connection's routing id: unique per client, kept across ZeroMQ's reconnects. */
  readonly routingId = `c${randomBytes(12).toString("hex")}`;
  readonly #endpoint: string;
  readonly #options: ClientTransportOptions;
  #socket: Dealer | undefined;
  #queue: SendQueue<null> | undefined;

  constructor(endpoint: string, options: ClientTransportOptions) {
    this.#endpoint = endpoint;
    this.#options = options;
  }

  start(handlers: ClientTransportHandlers): void {
    // linger 0: a client that gives up (timeout, close) must not deliver a stale
    // hello later, which would hold a pool slot for nobody.
    const curve = this.#options.curve;
    const heartbeat = this.#options.heartbeatIntervalMs ?? DEFAULT_ZMTP_HEARTBEAT_MS;
    let socket: Dealer;
    try {
      socket = retryOnEintr(() => this.#createSocket(curve, heartbeat));
    } catch (err) {
      // e.g. "Too many open file descriptors": the client fails with that cause, the controller goes on.
      queueMicrotask(() => handlers.onError(err as Error));
      return;
    }
    this.#socket = socket;
    if (handlers.onLink) {
      const onLink = handlers.onLink;
      socket.events.on("handshake", () => onLink(true));
      socket.events.on("disconnect", () => onLink(false));
      // A reconnect that fails its handshake (e.g. a gateway back with other CURVE keys) is no link.
      socket.events.on("handshake:error:auth", () => onLink(false));
      socket.events.on("handshake:error:protocol", () => onLink(false));
    }
    this.#queue = new SendQueue<null>(
      (frames) => socket.send(frames as Uint8Array[]),
      (_tag, err) => handlers.onError(err),
    );
    try {
      retryOnEintr(() => socket.connect(this.#endpoint));
    } catch (err) {
      queueMicrotask(() => handlers.onError(err as Error));
      return;
    }
    void this.#receiveLoop(socket, handlers);
  }

  #createSocket(curve: ClientTransportOptions["curve"], heartbeat: number): Dealer {
    return new Dealer({
      linger: 0,
      maxMessageSize: this.#options.maxMessageSize,
      // Unique per client, kept across ZeroMQ's reconnects (see the ROUTER's handover).
      routingId: this.routingId,
      heartbeatInterval: heartbeat,
      heartbeatTimeout: heartbeat * 3,
      ...(curve ? { curveServerKey: curve.serverPublicKey, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey } : {}),
    });
  }

  async #receiveLoop(socket: Dealer, handlers: ClientTransportHandlers): Promise<void> {
    while (!socket.closed) {
      let message: Buffer[];
      try {
        message = await socket.receive();
      } catch (err) {
        if (isClosedSocketError(err, socket)) return;
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

  send(frames: Frames): void {
    this.#queue?.push(frames, null);
  }

  close(): void {
    this.#queue?.close();
    const socket = this.#socket;
    if (socket && !socket.closed) socket.close();
  }
}

/** The production transport: ZeroMQ ROUTER/DEALER over TCP. */
export const zmqTransport: TransportFactory = {
  server: (options) => new ZmqServerTransport(options),
  client: (endpoint, options) => new ZmqClientTransport(endpoint, options),
};
