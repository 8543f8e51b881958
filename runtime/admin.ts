/**
 * Requests without a session: `admin.snapshot`, `admin.watch` and
 * `subroutine.list` are answered by the gateway's dispatcher, so looking at a
 * gateway or listing its subroutines takes no pool slot, works while the pool
 * is full, and does not show up in what it looks at. `swarmnet inspect` polls
 * through one `AdminConnection`; `swarmnet list` and `controller.listSubroutines()`
 * ask through one.
 */
import {
  ClosedError,
  ConnectionRefusedError,
  HandshakeError,
  DEFAULT_ADMIN_TIMEOUT_MS,
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
import type { SubroutineInfo } from "../protocol/messages.js";
import type { AttemptFailure, ClientCurve, ClientTransport, TransportFactory } from "../transports/transport.js";
import { zmqTransport } from "../transports/zmq.js";
import { normalizeEndpoint } from "./endpoint.js";
import type { GatewayInspection } from "./gateway.js";
import type { GatewayWatch } from "./inspector-feed.js";
import { intOption } from "./options.js";

export interface AdminOptions {
  /**
   * Deadline of each request, in ms (also how long an unreachable gateway takes to report:
   * ConnectionRefusedError when nothing listens, TimeoutError when nothing answers). @default 5000
   */
  timeoutMs?: number;
  /** CURVE: needed for a gateway with CURVE on; the key must be one it authorizes. */
  curve?: ClientCurve;
  /** Largest ZeroMQ frame accepted, in bytes. @default 64 MiB */
  maxMessageSize?: number;
  /** The wire; ZeroMQ unless a test passes another. */
  transport?: TransportFactory;
}

interface Waiter {
  readonly answer: "admin.snapshot.result" | "admin.watch.result" | "subroutine.listing";
  resolve(answer: Record<string, unknown>): void;
  reject(error: SwarmnetError): void;
  timer: LongTimeout;
}

const MAX_ID = 0xffff_ffff;

/**
 * One connection for requests that need no session to one gateway: snapshots
 * (the gateway started with `admin: true`) and its subroutines (any gateway).
 * It holds no pool slot. A CURVE handshake that fails fails every request at
 * once with HandshakeError (SWARMNET_HANDSHAKE_FAILED).
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
  /** The link has come up at least once (a request that then times out was not answered, not refused). */
  #linked = false;
  /** An attempt was refused while the link was down: what a request's deadline reports instead of "no answer". */
  #refused: ConnectionRefusedError | undefined;

  constructor(endpoint: string, options: AdminOptions = {}) {
    this.endpoint = normalizeEndpoint(endpoint);
    this.#timeoutMs = intOption("AdminConnection", "timeoutMs", options.timeoutMs, DEFAULT_ADMIN_TIMEOUT_MS);
    this.#transport = (options.transport ?? zmqTransport).client(this.endpoint, {
      maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE_BYTES,
      curve: options.curve,
    });
    this.#transport.start({
      onMessage: (frames) => this.#onMessage(frames),
      onError: (error) => this.#fail(new ClosedError(`admin connection to ${this.endpoint} failed: ${error.message}`, { cause: error })),
      onLink: (up) => {
        if (!up) return;
        this.#linked = true;
        this.#refused = undefined;
      },
      onAttemptFailed: (failure) => this.#attemptFailed(failure),
    });
  }

  /**
   * The gateway's subroutines, each name and whether it streams, sorted by name: what
   * `client.listSubroutines()` answers, without a session (any gateway, `admin` or not).
   * @throws ConnectionRefusedError (SWARMNET_CONNECTION_REFUSED) when nothing listened until the deadline;
   *   HandshakeError (SWARMNET_HANDSHAKE_FAILED); TimeoutError (SWARMNET_TIMEOUT); ClosedError (SWARMNET_CLOSED).
   */
  async listSubroutines(): Promise<SubroutineInfo[]> {
    const answer = await this.#request({ type: "subroutine.list" }, "subroutine.listing");
    return [...(answer["subroutines"] as readonly SubroutineInfo[])];
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
    if (!Number.isSafeInteger(since) || since < 0)
      throw new InvalidArgumentError(`watch: since must be a cursor >= 0, got ${String(since)}`);
    const answer = await this.#request(
      { type: "admin.watch", since, ...(options.machines ? { machines: true } : {}) },
      "admin.watch.result",
    );
    return answer as unknown as GatewayWatch;
  }

  #request(
    message: { type: "admin.snapshot" } | { type: "admin.watch"; since: number; machines?: true } | { type: "subroutine.list" },
    answer: Waiter["answer"],
  ): Promise<Record<string, unknown>> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#nextId;
    this.#nextId = id >= MAX_ID ? 1 : id + 1;
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setLongTimeout(() => {
        this.#waiting.delete(id);
        reject(
          !this.#linked && this.#refused !== undefined
            ? this.#refused
            : new TimeoutError(`no answer from gateway ${this.endpoint} within ${this.#timeoutMs} ms`),
        );
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

  #attemptFailed(failure: AttemptFailure): void {
    if (failure.kind === "handshake") {
      // A failed handshake fails again on every retry: say so now, not at the deadline.
      this.#fail(
        new HandshakeError(
          `CURVE/ZMTP handshake with gateway ${this.endpoint} failed: ${failure.detail}. ` +
            "Check the keys: this client's key pair must be in the gateway's authorized keys, and the server key must be the gateway's public key.",
        ),
      );
      return;
    }
    if (this.#linked) return;
    this.#refused = new ConnectionRefusedError(
      `connection refused at ${this.endpoint}: nothing listens there (is the gateway running, on this host and port?); retried for ${this.#timeoutMs} ms`,
    );
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
