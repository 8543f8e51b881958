import type { DeliveryStats } from "../actors/delivery.js";
import type { Server } from "node:http";
import { createActor, type Actor } from "xstate";
import { FileSandbox } from "../actors/file-sandbox.js";
import type { RefusedReplies } from "../actors/dispatcher.js";
import { gatewayMachine } from "../actors/gateway.js";
import type { CurrentRequest, HandlerSnapshot, JobProgress } from "../actors/handler.js";
import { SubroutineRegistry, type Subroutine } from "../actors/subroutines.js";
import { SubroutineThreadPool, type ThreadPoolInspection, type ThreadPoolOptions } from "../actors/thread-pool.js";
import type { SupervisorSnapshot } from "../actors/supervisor.js";
import { ClosedError, InvalidArgumentError, longClock } from "../protocol/index.js";
import type { ServerTransportStats } from "../transports/transport.js";
import { logSubroutineFailure, warn } from "./logger.js";
import { resolveGatewayOptions, type GatewayOptions } from "./gateway-options.js";
import { inspectOption } from "./options.js";
import { zmqTransport } from "../transports/zmq.js";
import { stateName, untilSnapshot } from "./wait.js";
import { GATEWAY_KINDS, machineGraphs, type GatewayWatch } from "./inspector-feed.js";
import { TransitionLog } from "./transition-log.js";
// Type only: prom-client takes a few hundred ms to load, so metrics.js is imported when a gateway asks for it.
import type { GatewayMetrics, MetricsOptions } from "./metrics.js";
import { startWebInspector, type WebInspector } from "./web-inspector.js";

export type { GatewayOptions, InternalGatewayOptions } from "./gateway-options.js";
export type { InspectCallback } from "./options.js";

export interface HandlerInspection {
  readonly actorId: string;
  readonly handlerId: number;
  readonly state: string;
  readonly request: CurrentRequest | undefined;
  /** The running stream or transfer: items or bytes done so far. */
  readonly progress: JobProgress | undefined;
  readonly restarts: number;
  /** Requests answered in this session (pings included), across handler restarts. */
  readonly served: number;
}

export interface GatewayInspection {
  readonly state: string;
  readonly endpoint: string | undefined;
  readonly supervisor: {
    readonly state: string;
    readonly poolSize: number;
    readonly maxPoolSize: number;
    /** Clients waiting in the fair queue for a slot (`getClient({ waitMs })`). */
    readonly waiting: number;
    readonly stats: SupervisorSnapshot["context"]["stats"];
  };
  readonly handlers: readonly HandlerInspection[];
  /** Handshakes completed, CURVE clients refused (unauthorized key), peers that failed the handshake otherwise. */
  readonly security: ServerTransportStats;
  /**
   * Answers the gateway refused to send as they were, since it started: over the client's or the
   * gateway's `maxMessageSize` (`tooLarge`, the caller got MessageTooLargeError) or not encodable as
   * CBOR (`unencodable`, the caller got SWARMNET_BAD_RESULT).
   */
  readonly replies: RefusedReplies;
  /** Worker-thread pools (`addSubroutines`): threads, queue, and how busy each worker is. */
  readonly threads: readonly ThreadPoolInspection[];
}

/** Options of `gateway.addSubroutines(module, options)`. */
export type AddSubroutinesOptions = ThreadPoolOptions;

/** Set by Gateway's static block: the one way into a gateway's handlers from outside the class. */
let crashHandler: (gateway: Gateway, handlerId: number, reason: string) => boolean;

/**
 * A gateway serves named subroutines to clients over a ZeroMQ ROUTER socket.
 *
 * ```ts
 * const gw = new Gateway({ port: 0 });
 * gw.addSubroutine("echo", (x: string) => x);
 * await gw.start();
 * console.log(gw.endpoint); // tcp://127.0.0.1:41234
 * ```
 */
export class Gateway {
  readonly options: Readonly<Required<Pick<GatewayOptions, "host" | "port" | "maxPoolSize" | "downloadDir">>> & {
    readonly fileRoots: readonly string[];
  };
  readonly #registry = new SubroutineRegistry();
  readonly #actor: Actor<typeof gatewayMachine>;
  readonly #closed: Promise<void>;
  readonly #testHooks: boolean;
  readonly #transport: { stats(): ServerTransportStats };
  #transitions: TransitionLog | undefined;
  #metrics: GatewayMetrics | undefined;
  readonly #extras: { metricsPort?: number; metricsOptions?: MetricsOptions; webPort?: number };
  #metricsUrl: string | undefined;
  #metricsServer: Server | undefined;
  #webInspector: WebInspector | undefined;
  /** Worker-thread pools and the names each still serves: a pool whose names were all replaced or removed is closed. */
  readonly #pools = new Map<SubroutineThreadPool, Set<string>>();

  /**
   * @param given the options, or just the port (pynetwork's `Gateway(1857)`); checked by resolveGatewayOptions (runtime/gateway-options.ts)
   * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) for an unknown option (with the likely one) or a bad value
   */
  constructor(given: GatewayOptions | number = {}) {
    const options = resolveGatewayOptions(given);
    const { host, port, maxMessageSize } = options;
    this.options = { host, port, maxPoolSize: options.maxPoolSize, downloadDir: options.downloadDir, fileRoots: options.fileRoots };
    if (!options.curve && !["127.0.0.1", "localhost", "::1"].includes(host) && options.transport === undefined) {
      warn(`gateway binds ${host} without CURVE: anyone who can reach it can call its subroutines (see README, Security)`);
    }
    const transport = (options.transport ?? zmqTransport).server({ host, port, maxMessageSize, curve: options.curve });
    this.#transport = transport;
    this.#testHooks = options.testHooks !== undefined;
    this.#registry.report({ remoteStack: options.remoteStack, onFailure: options.onSubroutineError ?? logSubroutineFailure });
    this.#actor = createActor(gatewayMachine, {
      id: "gateway",
      // Delays users size (stopGraceMs, ...) may pass 2^31 ms, where Node's timers overflow.
      clock: longClock,
      input: {
        transport,
        registry: this.#registry,
        maxPoolSize: options.maxPoolSize,
        maxRestarts: options.maxRestarts,
        restartWindowMs: options.restartWindowMs,
        livenessMs: options.livenessMs,
        maxEnvelopeBytes: maxMessageSize,
        stopGraceMs: options.stopGraceMs,
        allowRemoteClose: options.allowRemoteClose,
        hooks: options.testHooks,
        files: new FileSandbox({
          roots: this.options.fileRoots,
          downloadDir: this.options.downloadDir,
          regexTimeoutMs: options.regexTimeoutMs,
        }),
      },
      ...inspectOption(options.inspect),
    });
    this.#actor.getSnapshot().context.dispatcher.listSubroutinesWith(() => this.#registry.list());
    if (options.admin) {
      this.#actor.getSnapshot().context.dispatcher.enableAdmin(
        () => this.snapshot() as unknown as Record<string, unknown>,
        (since, machines) => this.#watchTransitions(since, machines) as { transitions: unknown[]; next: number },
      );
    }
    this.#extras = {};
    if (options.metrics) {
      this.#extras.metricsPort = options.metrics.port;
      this.#extras.metricsOptions = options.metrics.options;
    }
    if (options.webInspectorPort !== undefined) this.#extras.webPort = options.webInspectorPort;
    this.#closed = new Promise<void>((resolve) => {
      this.#actor.subscribe({ complete: () => resolve(), error: () => resolve() });
    })
      .then(() => this.#closePools())
      .then(() => this.#stopExtras());
    this.#actor.start();
  }

  /** Registers (or replaces) a subroutine: `fn(...args, kwargs)`, sync or async. */
  addSubroutine<F extends Subroutine>(name: string, fn: F): this {
    this.#registry.add(name, fn);
    this.#release([name]);
    return this;
  }

  /**
   * Registers every exported function of a module as a subroutine that runs on a pool of
   * worker threads (piscina), off the gateway's event loop: the choice for CPU-bound work
   * (pynetwork ran each handler on its own thread). Batch get, batch send and streams work
   * as on the event loop, with the same errors; the batch-send buffer is moved to the
   * worker, not copied. A worker that crashes is a handler crash (`HandlerCrashedError`,
   * restart budget applies); a call whose deadline passes has its worker terminated and
   * replaced. More handlers than threads queue first come, first served.
   *
   * The module is loaded in each worker (not on the main thread): exports must be plain
   * functions, sync or async, or generator functions for streams, and arguments and results
   * must be structured-clonable. Under tsx a `.ts` module works too.
   *
   * ```ts
   * await gw.addSubroutines(new URL("./subs.js", import.meta.url), { threads: 2 });
   * ```
   * @param module a file URL or a path to an ES module.
   * @param options `threads` (default `os.availableParallelism()`), `only` (export names to register).
   * @returns the names registered.
   * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) when the module cannot be loaded in a worker or exports
   *   no functions, `threads` is not an integer 1..256, `only` is not a non-empty array of names or names a missing
   *   export, or an export's name is not a valid subroutine name.
   * @throws ClosedError (SWARMNET_CLOSED) once the gateway is stopping or stopped.
   *
   * Adding a name again (with `addSubroutine` or another `addSubroutines`) replaces it; a pool left serving no
   * name is closed. An open stream holds its worker thread until it ends, even while paused by credit.
   */
  async addSubroutines(module: string | URL, options: AddSubroutinesOptions = {}): Promise<string[]> {
    const live = (): boolean =>
      this.#actor.getSnapshot().status === "active" && !["stopping", "stopped"].includes(stateName(this.#actor.getSnapshot().value));
    if (!live()) throw new ClosedError("addSubroutines: the gateway is stopped");
    const pool = await SubroutineThreadPool.open(module, options);
    if (!live()) {
      await pool.close();
      throw new ClosedError("addSubroutines: the gateway stopped while the module was loading");
    }
    const added: string[] = [];
    try {
      for (const entry of pool.subroutines) {
        const { fn, invoke } = pool.invoker(entry);
        this.#registry.add(entry.name, fn, { invoke, module: pool.moduleUrl, kind: entry.kind });
        added.push(entry.name);
      }
    } catch (error) {
      for (const name of added) this.#registry.remove(name);
      await pool.close();
      throw error;
    }
    this.#release(added);
    this.#pools.set(pool, new Set(added));
    return added;
  }

  /** `names` now mean something else (or nothing): pools left serving no name are closed. */
  #release(names: readonly string[]): void {
    for (const [pool, served] of this.#pools) {
      for (const name of names) served.delete(name);
      if (served.size === 0) {
        this.#pools.delete(pool);
        void pool.close().catch(() => undefined);
      }
    }
  }

  async #closePools(): Promise<void> {
    const pools = [...this.#pools.keys()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.close().catch(() => undefined)));
  }

  /** Returns whether a subroutine of that name was registered. */
  removeSubroutine(name: string): boolean {
    this.#release([name]);
    return this.#registry.remove(name);
  }

  /** Binds and starts serving; resolves once bound. */
  async start(): Promise<this> {
    const state = this.#actor.getSnapshot().value;
    if (state !== "idle") throw new ClosedError(`gateway cannot start from state '${stateName(state)}'`);
    this.#actor.send({ type: "start" });
    const snapshot = await untilSnapshot(this.#actor, (s) => s.value !== "idle" && s.value !== "starting");
    if (snapshot.value === "failed") {
      const error = snapshot.context.error as Error;
      throw Object.assign(error, { message: `gateway could not bind ${this.options.host}:${this.options.port}: ${error.message}` });
    }
    try {
      await this.#startExtras();
    } catch (err) {
      await this.stop();
      throw err;
    }
    return this;
  }

  /** The metrics endpoint and web inspector, once the gateway is bound. */
  async #startExtras(): Promise<void> {
    const { metricsPort, metricsOptions, webPort } = this.#extras;
    if (metricsPort !== undefined) {
      const { GatewayMetrics, serveMetrics } = await import("./metrics.js");
      const metrics = new GatewayMetrics(
        {
          known: (name) => this.#registry.get(name) !== undefined,
          pool: () => {
            const { supervisor } = this.snapshot();
            return {
              size: supervisor.poolSize,
              limit: supervisor.maxPoolSize,
              waiting: supervisor.waiting,
              restarts: supervisor.stats.restarts,
              crashedOut: supervisor.stats.crashedOut,
            };
          },
          security: () => this.#transport.stats(),
        },
        metricsOptions,
      );
      const context = this.#actor.getSnapshot().context;
      context.dispatcher.observe(metrics);
      context.outbox.observe(metrics);
      this.#metrics = metrics;
      const served = await serveMetrics(metrics, metricsPort).catch((err: Error) => {
        throw Object.assign(err, { message: `gateway could not serve metrics on 127.0.0.1:${metricsPort}: ${err.message}` });
      });
      this.#metricsServer = served.server;
      this.#metricsUrl = served.url;
    }
    if (webPort !== undefined) {
      this.#webInspector = await startWebInspector({ gateway: this, port: webPort }).catch((err: Error) => {
        throw Object.assign(err, { message: `gateway could not serve the web inspector on 127.0.0.1:${webPort}: ${err.message}` });
      });
    }
  }

  async #stopExtras(): Promise<void> {
    const server = this.#metricsServer;
    this.#metricsServer = undefined;
    if (server !== undefined) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    }
    await this.#webInspector?.close();
  }

  /** `http://127.0.0.1:PORT/metrics` once started with the `metrics` option; undefined otherwise. */
  get metricsUrl(): string | undefined {
    return this.#metricsUrl;
  }

  /**
   * The metrics (with the `metrics` option, from `start()` on): `linkDrop()`, `replay(n)`, and the
   * prom-client `registry` to add your own. Undefined without the option.
   */
  get metrics(): GatewayMetrics | undefined {
    return this.#metrics;
  }

  /** `http://127.0.0.1:PORT/` once started with the `webInspector` option; undefined otherwise. */
  get webInspectorUrl(): string | undefined {
    return this.#webInspector?.url;
  }

  /** The bound endpoint, e.g. `tcp://127.0.0.1:41234`; throws before `start()`. */
  get endpoint(): string {
    const endpoint = this.#actor.getSnapshot().context.endpoint;
    if (endpoint === undefined) throw new ClosedError("gateway is not started");
    return endpoint;
  }

  /** The bound port (the real one when started with port 0). */
  get port(): number {
    return Number(/:(\d+)$/.exec(this.endpoint)?.[1]);
  }

  /** Stops gracefully: refuses new clients, lets calls in flight finish, tells clients. */
  async stop(): Promise<void> {
    const snapshot = this.#actor.getSnapshot();
    if (snapshot.value === "starting") await untilSnapshot(this.#actor, (s) => s.value !== "starting").catch(() => undefined);
    if (this.#actor.getSnapshot().status === "active") this.#actor.send({ type: "stop" });
    await this.#closed;
  }

  /** Resolves when the gateway has stopped, whoever stopped it. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /** The supervisor's state and each handler's id, state and current request. */
  snapshot(): GatewayInspection {
    const gw = this.#actor.getSnapshot();
    const supervisor = gw.children["supervisor"]?.getSnapshot() as SupervisorSnapshot | undefined;
    const handlers: HandlerInspection[] = [];
    for (const [actorId, child] of Object.entries(supervisor?.children ?? {})) {
      if (!actorId.startsWith("handler-")) continue;
      const h = child?.getSnapshot() as HandlerSnapshot | undefined;
      if (!h || h.status !== "active") continue;
      handlers.push({
        actorId,
        handlerId: h.context.session.handlerId,
        state: stateName(h.value),
        request: h.context.request,
        progress: h.context.session.job?.progress(),
        restarts: h.context.session.generation,
        served: h.context.session.served,
      });
    }
    handlers.sort((a, b) => a.handlerId - b.handlerId);
    return {
      state: stateName(gw.value),
      endpoint: gw.context.endpoint,
      supervisor: {
        state: supervisor ? stateName(supervisor.value) : "stopped",
        poolSize: supervisor?.context.poolSize ?? 0,
        maxPoolSize: this.options.maxPoolSize,
        waiting: supervisor?.context.waiting.length ?? 0,
        stats: supervisor?.context.stats ?? { accepted: 0, refused: 0, restarts: 0, crashedOut: 0, expired: 0, waited: 0 },
      },
      handlers,
      security: this.#transport.stats(),
      replies: { ...gw.context.outbox.refused },
      threads: [...this.#pools.keys()].map((pool) => pool.inspect()),
    };
  }

  /**
   * What the web inspector reads: `snapshot()`, the actor transitions recorded
   * after cursor `since` (oldest first; pass the returned `next` the next time)
   * and, with `machines: true`, the statechart of each machine kind. The
   * gateway starts recording transitions (a ring of the last 2000, through
   * xstate's `system.inspect`) on the first call; until then it pays nothing.
   */
  watch(since = 0, options: { machines?: boolean } = {}): GatewayWatch {
    return { snapshot: this.snapshot(), ...this.#watchTransitions(since, options.machines === true) };
  }

  #watchTransitions(since: number, machines: boolean): Omit<GatewayWatch, "snapshot"> {
    this.#transitions ??= new TransitionLog(GATEWAY_KINDS).attach(this.#actor);
    return { ...this.#transitions.since(since), ...(machines ? { machines: machineGraphs(GATEWAY_KINDS) } : {}) };
  }

  static {
    crashHandler = (gateway, handlerId, reason) => gateway.#crashHandler(handlerId, reason);
  }

  #crashHandler(handlerId: number, reason: string): boolean {
    if (!this.#testHooks) throw new InvalidArgumentError("crashHandlerForTest needs the Gateway option 'testHooks'");
    const supervisor = this.#actor.getSnapshot().children["supervisor"]?.getSnapshot() as SupervisorSnapshot | undefined;
    const session = supervisor?.context.table.all().find((s) => s.handlerId === handlerId);
    session?.ref?.send({ type: "test.crash", reason });
    return session !== undefined;
  }

  /**
   * What the delivery layer did over this gateway's life, summed over sessions:
   * messages sent, resent after link drops (and their bytes), duplicates and
   * gaps dropped, replays.
   */
  deliveryStats(): DeliveryStats {
    return this.#actor.getSnapshot().context.table.deliveryStats();
  }

  /** Counters of the data plane (frames received, protocol errors, strangers refused), for tests and monitoring. */
  get counters(): Readonly<{ received: number; protocolErrors: number; sessionless: number; strangers: number }> {
    return this.#actor.getSnapshot().context.dispatcher.counters;
  }
}

/**
 * Test-only fault injection (`swarmnet/internal`): crashes a live handler of `gateway` wherever it is
 * (mid-stream, mid-transfer), as a bug inside it would. Returns whether a handler of that id was found.
 * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) unless the gateway was made with the `testHooks` option
 */
export function crashHandlerForTest(gateway: Gateway, handlerId: number, reason = "injected crash"): boolean {
  return crashHandler(gateway, handlerId, reason);
}
