/**
 * An in-memory transport with ZeroMQ's shape (routing ids, multipart frames,
 * asynchronous delivery), for fast unit tests of the machines without sockets.
 */
import type {
  ClientTransport,
  ClientTransportHandlers,
  Frames,
  Peer,
  ServerTransport,
  ServerTransportHandlers,
  TransportFactory,
} from "./transport.js";

interface MemoryServer {
  handlers: ServerTransportHandlers;
  clients: Map<string, MemoryClient>;
}

class MemoryClient implements ClientTransport {
  readonly peer: Peer;
  #handlers: ClientTransportHandlers | undefined;
  #closed = false;
  readonly #hub: MemoryHub;
  readonly #endpoint: string;
  #pending: Frames[] = [];

  constructor(hub: MemoryHub, endpoint: string, peer: Peer) {
    this.#hub = hub;
    this.#endpoint = endpoint;
    this.peer = peer;
  }

  start(handlers: ClientTransportHandlers): void {
    this.#handlers = handlers;
  }

  send(frames: Frames): void {
    if (this.#closed) return;
    const copy = frames.map((f) => Uint8Array.from(f));
    queueMicrotask(() => this.#deliver(copy));
  }

  /** Messages sent before the server listens wait here, as ZeroMQ queues them. */
  #deliver(frames: Frames): void {
    if (this.#closed) return;
    const server = this.#hub.servers.get(this.#endpoint);
    if (!server) {
      this.#pending.push(frames);
      return;
    }
    server.clients.set(this.peer.key, this);
    server.handlers.onMessage(this.peer, frames);
  }

  flushPending(): void {
    const pending = this.#pending;
    this.#pending = [];
    for (const frames of pending) this.#deliver(frames);
  }

  receive(frames: Frames): void {
    if (!this.#closed) this.#handlers?.onMessage(frames);
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
    this.#hub.clients.delete(this);
  }
}

class MemoryServerTransport implements ServerTransport {
  readonly #hub: MemoryHub;
  readonly #endpoint: string;
  #server: MemoryServer | undefined;

  constructor(hub: MemoryHub, endpoint: string) {
    this.#hub = hub;
    this.#endpoint = endpoint;
  }

  async listen(handlers: ServerTransportHandlers): Promise<string> {
    if (this.#hub.servers.has(this.#endpoint)) throw new Error(`address in use: ${this.#endpoint}`);
    this.#server = { handlers, clients: new Map() };
    this.#hub.servers.set(this.#endpoint, this.#server);
    for (const client of this.#hub.clients) client.flushPending();
    return this.#endpoint;
  }

  send(peer: Peer, frames: Frames, tag = 0): void {
    const server = this.#server;
    if (!server) return;
    const copy = frames.map((f) => Uint8Array.from(f));
    queueMicrotask(() => {
      const client = server.clients.get(peer.key);
      if (!client || client.closed) {
        server.handlers.onUndeliverable(peer, Object.assign(new Error("host unreachable"), { code: "EHOSTUNREACH" }), tag);
        return;
      }
      client.receive(copy);
    });
  }

  async flush(): Promise<void> {}

  stats(): { handshakes: number; authFailures: number; protocolFailures: number } {
    return { handshakes: this.#server?.clients.size ?? 0, authFailures: 0, protocolFailures: 0 };
  }

  async close(): Promise<void> {
    if (this.#hub.servers.get(this.#endpoint) === this.#server) this.#hub.servers.delete(this.#endpoint);
    this.#server = undefined;
  }
}

/** One in-memory "network": servers by endpoint name, clients with fresh routing ids. */
export class MemoryHub implements TransportFactory {
  readonly servers = new Map<string, MemoryServer>();
  readonly clients = new Set<MemoryClient>();
  #nextId = 1;

  server(options: { host: string; port: number }): ServerTransport {
    return new MemoryServerTransport(this, `mem://${options.host}:${options.port}`);
  }

  client(endpoint: string): ClientTransport {
    const id = new Uint8Array(5);
    new DataView(id.buffer).setUint32(1, this.#nextId++);
    const key = Buffer.from(id).toString("latin1");
    const client = new MemoryClient(this, endpoint.replace(/^tcp:\/\//, "mem://"), { id, key });
    this.clients.add(client);
    return client;
  }
}
