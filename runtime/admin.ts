/**
 * Admin requests without a session: `admin.snapshot` is answered by the
 * gateway's dispatcher, so looking at a gateway takes no pool slot, works
 * while the pool is full, and does not show up in what it looks at.
 * `swarmnet inspect` polls through one `AdminConnection`.
 */
import {
  ClosedError,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_MESSAGE_SIZE_BYTES,
  InvalidArgumentError,
  ProtocolError,
  TimeoutError,
  decode,
  encode,
  errorFromWire,
  parseGatewayMessage,
  type SwarmnetError,
  clearLongTimeout,
  setLongTimeout,
  type LongTimeout,
} from "../protocol/index.js";
import type { ClientCurve, ClientTransport, TransportFactory } from "../transports/transport.js";
import { zmqTransport } from "../transports/zmq.js";
import { normalizeEndpoint } from "./endpoint.js";
import type { GatewayInspection } from "./gateway.js";
import type { GatewayWatch } from "./inspector-feed.js";

export interface AdminOptions {
  /** Deadline of each request, in ms (also how long an unreachable gateway takes to report). @default 5000 */
  timeoutMs?: number;
  /** CURVE: needed for a gateway with CURVE on; the key must be one it authorizes. */
  curve?: ClientCurve;
  /** Largest ZeroMQ frame accepted, in bytes. @default 64 MiB */
  maxMessageSize?: number;
  /** The wire; ZeroMQ unless a test passes another. */
  transport?: TransportFactory;
}

interface Waiter {
  readonly answer: "admin.snapshot.result" | "admin.watch.result";
  resolve(answer: Record<string, unknown>): void;
  reject(error: SwarmnetError): void;
  timer: LongTimeout;
}

const MAX_ID = 0xffff_ffff;

/**
 * One connection for admin requests to one gateway (started with `admin: true`).
 *
 * ```ts
 * using admin = new AdminConnection("127.0.0.1:1857");
 * const { supervisor, handlers } = await admin.snapshot();
 * ```
 */
export class AdminConnection {
  readonly endpoint: string;
  readonly #timeoutMs: number;
  readonly #transport: ClientTransport;
  readonly #waiting = new Map<number, Waiter>();
  #nextId = 1;
  #closed: SwarmnetError | undefined;

  constructor(endpoint: string, options: AdminOptions = {}) {
    this.endpoint = normalizeEndpoint(endpoint);
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new InvalidArgumentError(`AdminConnection option 'timeoutMs' must be a positive integer, got ${String(timeoutMs)}`);
    }
    this.#timeoutMs = timeoutMs;
    this.#transport = (options.transport ?? zmqTransport).client(this.endpoint, {
      maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE_BYTES,
      curve: options.curve,
    });
    this.#transport.start({
      onMessage: (frames) => this.#onMessage(frames),
      onError: (error) => this.#fail(new ClosedError(`admin connection to ${this.endpoint} failed: ${error.message}`, { cause: error })),
    });
  }

  /** The gateway's `snapshot()`; AdminDisabledError unless it runs with `admin: true`, TimeoutError if it does not answer. */
  async snapshot(): Promise<GatewayInspection> {
    const answer = await this.#request({ type: "admin.snapshot" }, "admin.snapshot.result");
    return answer["snapshot"] as unknown as GatewayInspection;
  }

  /**
   * The gateway's `watch(since, { machines })`: its snapshot, the actor
   * transitions it recorded after cursor `since` and the cursor to ask with
   * next, and the statecharts when asked. What `swarmnet inspect --web` polls.
   * @throws AdminDisabledError (SWARMNET_ADMIN_DISABLED) unless the gateway runs with `admin: true`;
   *   TimeoutError (SWARMNET_TIMEOUT); ClosedError (SWARMNET_CLOSED) after `close()`.
   */
  async watch(since = 0, options: { machines?: boolean } = {}): Promise<GatewayWatch> {
    if (!Number.isSafeInteger(since) || since < 0) throw new InvalidArgumentError(`watch: since must be a cursor >= 0, got ${String(since)}`);
    const answer = await this.#request({ type: "admin.watch", since, ...(options.machines ? { machines: true } : {}) }, "admin.watch.result");
    return answer as unknown as GatewayWatch;
  }

  #request(message: { type: "admin.snapshot" } | { type: "admin.watch"; since: number; machines?: true }, answer: Waiter["answer"]): Promise<Record<string, unknown>> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#nextId;
    this.#nextId = id >= MAX_ID ? 1 : id + 1;
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setLongTimeout(() => {
        this.#waiting.delete(id);
        reject(new TimeoutError(`no answer from gateway ${this.endpoint} within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#waiting.set(id, { answer, resolve, reject, timer });
      this.#transport.send([encode({ ...message, id })]);
    });
  }

  /** Closes the connection; requests still waiting fail with ClosedError. A no-op when closed. */
  close(): void {
    if (this.#closed) return;
    this.#fail(new ClosedError("admin connection closed"));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #onMessage(frames: readonly Uint8Array[]): void {
    let message;
    try {
      const envelope = frames[0];
      if (envelope === undefined) throw new ProtocolError("empty message");
      message = parseGatewayMessage(decode(envelope), frames.length === 2);
    } catch {
      return; // Not ours to fail on: the request's deadline still runs.
    }
    const waiter = this.#waiting.get(message.id);
    if (waiter === undefined) return;
    if (message.type === waiter.answer) {
      this.#settle(message.id);
      const { type: _type, id: _id, ...answer } = message;
      waiter.resolve(answer);
    } else if (message.type === "error") {
      this.#settle(message.id);
      waiter.reject(errorFromWire(message.code, message.message, message.name));
    }
  }

  #settle(id: number): void {
    const waiter = this.#waiting.get(id);
    if (waiter) clearLongTimeout(waiter.timer);
    this.#waiting.delete(id);
  }

  #fail(error: SwarmnetError): void {
    if (this.#closed) return;
    this.#closed = error;
    for (const [id, waiter] of this.#waiting) {
      this.#settle(id);
      waiter.reject(error);
    }
    this.#transport.close();
  }
}

/**
 * One snapshot of a gateway started with `admin: true`, over a connection of
 * its own that holds no pool slot.
 *
 * ```ts
 * const { supervisor } = await inspectGateway("tcp://10.0.0.2:1857");
 * console.log(`${supervisor.poolSize}/${supervisor.maxPoolSize} handlers busy`);
 * ```
 */
export async function inspectGateway(endpoint: string, options: AdminOptions = {}): Promise<GatewayInspection> {
  const admin = new AdminConnection(endpoint, options);
  try {
    return await admin.snapshot();
  } finally {
    admin.close();
  }
}
