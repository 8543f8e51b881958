import { createActor, type Actor } from "xstate";
import { controllerMachine } from "../actors/controller.js";
import { DeliveryLink } from "../actors/delivery-link.js";
import type { ClientActorRef } from "../actors/client.js";
import { ClosedError, ConnectionError, ErrorCode, InvalidArgumentError, SwarmnetError, longClock } from "../protocol/index.js";
import type { ClientCurve, TransportFactory } from "../transports/transport.js";
import { zmqTransport } from "../transports/zmq.js";
import type { SubroutineInfo } from "../protocol/messages.js";
import { AdminConnection } from "./admin.js";
import { atCallSite, captureCallSite, type CallSite } from "./call-site.js";
import { Client } from "./client.js";
import {
  resolveControllerOptions,
  type ControllerOptions,
  type GetClientOptions,
  type GetSwarmOptions,
  type ListSubroutinesOptions,
} from "./controller-options.js";
import { normalizeEndpoint } from "./endpoint.js";
import { GatewayHealth } from "./gateway-health.js";
import { checkOptionNames, inspectOption, intOption } from "./options.js";
import { Swarm } from "./swarm.js";
import { untilSnapshot } from "./wait.js";

export type { ControllerOptions, GetClientOptions, GetSwarmOptions, ListSubroutinesOptions } from "./controller-options.js";

/** @internal What `Controller.connectPlan()` hands the composable client actor. */
export interface ConnectPlan {
  readonly endpoints: readonly string[];
  readonly transport: TransportFactory;
  readonly curve: ClientCurve | undefined;
  readonly maxMessageSize: number;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
}

/** A failure from getSwarm/getClient gets the caller's frames and, for a swarm, how many clients were had. */
function swarmFailure(error: unknown, got: number, n: number, callSite: CallSite): unknown {
  if (!(error instanceof SwarmnetError)) return error;
  if (n > 1) error.message = `getSwarm(${n}): got ${got} of ${n} clients: ${error.message}`;
  return atCallSite(error, callSite);
}

/** Longest a client of a controller waits for the gateway's goodbye on close, in ms (the controller's timeoutMs when shorter). */
const MAX_CLOSE_TIMEOUT_MS = 5_000;

/** Errors after which the next gateway is worth a try. */
function isFailover(error: unknown): boolean {
  const code = (error as SwarmnetError).code;
  return (
    code === ErrorCode.POOL_FULL ||
    code === ErrorCode.TIMEOUT ||
    code === ErrorCode.CONNECTION ||
    code === ErrorCode.CONNECTION_REFUSED ||
    code === ErrorCode.SESSION_ENDED
  );
}

/**
 * Connects to one or many gateways and hands out clients, one DEALER socket
 * (one TCP connection, one handler) each.
 *
 * ```ts
 * const controller = new Controller({ port: 1857 });
 * await using client = await controller.getClient();
 * await client.ping("hello");
 * ```
 */
export class Controller {
  readonly endpoints: readonly string[];
  readonly downloadDir: string;
  readonly verbose: boolean;
  readonly #timeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #maxMessageSize: number;
  readonly #transport: TransportFactory;
  readonly #curve: ClientCurve | undefined;
  readonly #actor: Actor<typeof controllerMachine>;
  readonly #clients = new Set<Client>();
  /**
   * Client actor ids in use (`client-<n>`). A released id is reused, lowest first: xstate keeps
   * one cache entry per event type a machine ever saw (`xstate.done.actor.<id>`), so ids unique
   * over the controller's life would grow its memory with every client that came and went.
   */
  readonly #ids = new Set<number>();
  /** Which gateways answered lately: new clients go to live ones first. */
  readonly #health = new GatewayHealth();

  /**
   * @param options the options, or just the gateway's port on 127.0.0.1
   * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) for an unknown option (with the likely one) or a bad value
   */
  constructor(options: ControllerOptions | number = {}) {
    const resolved = resolveControllerOptions(options);
    this.endpoints = resolved.endpoints;
    this.downloadDir = resolved.downloadDir;
    this.verbose = resolved.verbose;
    this.#timeoutMs = resolved.timeoutMs;
    this.#connectTimeoutMs = resolved.connectTimeoutMs;
    this.#maxMessageSize = resolved.maxMessageSize;
    this.#transport = resolved.transport ?? zmqTransport;
    this.#curve = resolved.curve;
    this.#actor = createActor(controllerMachine, {
      id: "controller",
      // Delays users size (connectTimeoutMs, ...) may pass 2^31 ms, where Node's timers overflow.
      clock: longClock,
      input: { endpoints: this.endpoints },
      ...inspectOption(resolved.inspect),
    });
    this.#actor.start();
  }

  /** The controller actor, for inspection and composition. */
  get actor(): Actor<typeof controllerMachine> {
    return this.#actor;
  }

  /**
   * @internal Where and how a client of this controller connects, in the order
   * getClient() would try the gateways: for the composable client actor
   * (`swarmClientMachine` with `{ controller }`), which connects by itself.
   */
  connectPlan(): ConnectPlan {
    return {
      endpoints: this.#rotate(),
      transport: this.#transport,
      curve: this.#curve,
      maxMessageSize: this.#maxMessageSize,
      timeoutMs: this.#timeoutMs,
      connectTimeoutMs: this.#connectTimeoutMs,
    };
  }

  /** Live clients of this controller. */
  get clients(): readonly Client[] {
    return [...this.#clients];
  }

  /**
   * A new client with its own handler. With several gateways, tries them in
   * turn from where the last one left off, skipping one that is full or down;
   * rejects with the last error (PoolFullError when all are full).
   */
  async getClient(options: GetClientOptions = {}): Promise<Client> {
    const callSite = captureCallSite(true);
    try {
      return await this.#getClient(options);
    } catch (error) {
      throw swarmFailure(error, 0, 1, callSite);
    }
  }

  async #getClient(options: GetClientOptions): Promise<Client> {
    const candidates = options.endpoint !== undefined ? [normalizeEndpoint(options.endpoint)] : this.#rotate();
    let lastError: unknown;
    for (const endpoint of candidates) {
      try {
        const client = await this.#connect(
          endpoint,
          options.connectTimeoutMs ?? this.#connectTimeoutMs,
          options.waitMs ?? 0,
          options.onRetry,
        );
        this.#health.markUp(endpoint);
        return client;
      } catch (err) {
        lastError = err;
        if (!isFailover(err)) throw err;
        // Down, or not answering: the next getClient() tries the live gateways first (a full one is not down).
        if ((err as SwarmnetError).code !== ErrorCode.POOL_FULL) this.#health.markDown(endpoint);
      }
    }
    throw lastError ?? new ConnectionError("no gateway to connect to");
  }

  /**
   * `n` clients working one job, spread round-robin over the gateways. All or
   * nothing unless `min` says otherwise: if one cannot be had, the others are
   * closed and the error thrown (its message says how many were had).
   * @throws PoolFullError (SWARMNET_POOL_FULL) when the pools have fewer than `n` (or `min`) free slots
   */
  async getSwarm(n: number, options: GetSwarmOptions = {}): Promise<Swarm> {
    const callSite = captureCallSite(true);
    if (!Number.isInteger(n) || n < 1)
      throw atCallSite(new InvalidArgumentError(`getSwarm: n must be a positive integer, got ${n}`), callSite);
    const min = options.min ?? n;
    if (!Number.isInteger(min) || min < 1 || min > n) {
      throw atCallSite(new InvalidArgumentError(`getSwarm: min must be an integer in 1..${n}, got ${String(min)}`), callSite);
    }
    const { min: _min, ...clientOptions } = options;
    const settled = await Promise.allSettled(Array.from({ length: n }, () => this.#getClient(clientOptions)));
    const clients = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failure && (clients.length < min || !isFailover(failure.reason))) {
      await Promise.all(clients.map((c) => c.closeHandler()));
      throw swarmFailure(failure.reason, clients.length, n, callSite);
    }
    return new Swarm(clients);
  }

  /**
   * A gateway's subroutines (the first gateway by default), each name and whether it
   * streams, sorted by name. Asked over a connection of its own without a session: it
   * takes no pool slot, so a full pool still answers (`client.listSubroutines()` asks
   * through a client that already holds one).
   *
   * ```ts
   * for (const { name, stream } of await controller.listSubroutines()) console.log(name, stream ? "stream" : "call");
   * ```
   * @throws ConnectionRefusedError (SWARMNET_CONNECTION_REFUSED) when nothing listened until the deadline;
   *   HandshakeError (SWARMNET_HANDSHAKE_FAILED) for CURVE keys the gateway refuses; TimeoutError
   *   (SWARMNET_TIMEOUT) when nothing answered; InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) for a bad option.
   */
  async listSubroutines(options: ListSubroutinesOptions = {}): Promise<SubroutineInfo[]> {
    const callSite = captureCallSite(true);
    try {
      checkOptionNames("listSubroutines", options, ["endpoint", "timeoutMs"]);
      const endpoint = options.endpoint !== undefined ? normalizeEndpoint(options.endpoint) : this.endpoints[0]!;
      if (this.#actor.getSnapshot().status !== "active") throw new ClosedError("controller is closed");
      const timeoutMs = intOption("listSubroutines", "timeoutMs", options.timeoutMs, this.#connectTimeoutMs);
      const admin = new AdminConnection(endpoint, {
        timeoutMs,
        maxMessageSize: this.#maxMessageSize,
        transport: this.#transport,
        ...(this.#curve ? { curve: this.#curve } : {}),
      });
      try {
        return await admin.listSubroutines();
      } finally {
        admin.close();
      }
    } catch (error) {
      throw error instanceof SwarmnetError ? atCallSite(error, callSite) : error;
    }
  }

  /** Asks a gateway (the first one by default) to stop, through a client of this controller. */
  async closeGateway(endpoint?: string): Promise<void> {
    const target = endpoint !== undefined ? normalizeEndpoint(endpoint) : this.endpoints[0]!;
    const existing = [...this.#clients].find((c) => c.endpoint === target && c.state === "ready");
    const client = existing ?? (await this.getClient({ endpoint: target }));
    await client.closeGateway();
  }

  /** Closes every client (their handlers are freed on the gateways) and the controller. */
  async close(): Promise<void> {
    await Promise.all([...this.#clients].map((c) => c.closeHandler()));
    if (this.#actor.getSnapshot().status === "active") this.#actor.send({ type: "close" });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #takeSlot(): number {
    let slot = 1;
    while (this.#ids.has(slot)) slot++;
    this.#ids.add(slot);
    return slot;
  }

  /** The gateways in the order the next client tries them: live ones round-robin, then those in back-off. */
  #rotate(): string[] {
    return this.#health.order(this.endpoints);
  }

  async #connect(endpoint: string, connectTimeoutMs: number, waitMs: number, onRetry: GetClientOptions["onRetry"]): Promise<Client> {
    intOption("getClient", "waitMs", waitMs, 0, 0);
    if (this.#actor.getSnapshot().status !== "active") throw new ClosedError("controller is closed");
    const slot = this.#takeSlot();
    const id = `client-${slot}`;
    // Delivery (numbering, acks, replay after a reconnect) sits between the client machine and the wire;
    // its link events (socket monitor) also tell the controller which gateways are up.
    const transport = new DeliveryLink(this.#transport.client(endpoint, { maxMessageSize: this.#maxMessageSize, curve: this.#curve }), {
      onLink: (up) => (up ? this.#health.markUp(endpoint) : this.#health.markDown(endpoint)),
    });
    this.#actor.send({
      type: "client.spawn",
      id,
      input: {
        transport,
        endpoint,
        connectTimeoutMs,
        waitMs,
        closeTimeoutMs: Math.min(this.#timeoutMs, MAX_CLOSE_TIMEOUT_MS),
        maxMessageSize: this.#maxMessageSize,
        ...(onRetry ? { onRetry } : {}),
      },
    });
    // Processed at once unless the controller is mid-step (then just after): wait for the child or its failure.
    const snapshot = await untilSnapshot(this.#actor, (s) => s.children[id] !== undefined || id in s.context.failures).catch(
      () => undefined,
    );
    const ref = snapshot?.children[id] as ClientActorRef | undefined;
    if (!ref) {
      this.#ids.delete(slot);
      const cause = snapshot?.context.failures[id];
      throw new ConnectionError(`could not create a client for ${endpoint}${cause instanceof Error ? `: ${cause.message}` : ""}`, {
        cause,
      });
    }
    const client = new Client(
      ref,
      endpoint,
      this.#timeoutMs,
      (c) => {
        if (!this.#clients.delete(c)) return;
        if (this.#actor.getSnapshot().status === "active") this.#actor.send({ type: "client.release", id });
        this.#ids.delete(slot);
      },
      { downloadDir: this.downloadDir, verbose: this.verbose },
    );
    this.#clients.add(client);
    return client.connected();
  }
}
