/**
 * What a workload is, for the runner and for the modules that implement it.
 *
 * A workload lives in `bench/workloads/<id>-<name>/`: a `workload.ts` that
 * calls {@link defineWorkload} (size, metrics, which systems apply) and one
 * file per system that exports a {@link ServerPart} named `server` and a
 * {@link ClientPart} named `client`. The runner starts the server part in one
 * process and the client part in another, so the two never share an event loop.
 */

/** The systems every workload is compared across, swarmnet first. */
export const SYSTEMS = ["swarmnet", "zeromq", "grpc", "tcp"] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** Peers are every system but swarmnet: what the ratios are taken against. */
export const PEERS = SYSTEMS.filter((s): s is Exclude<SystemName, "swarmnet"> => s !== "swarmnet");
export type PeerName = (typeof PEERS)[number];

export const SYSTEM_LABELS: Record<SystemName, string> = {
  swarmnet: "swarmnet",
  zeromq: "zeromq.js",
  grpc: "grpc-js",
  tcp: "raw TCP",
};

/** Benchmarks only ever listen and connect here. */
export const BENCH_HOST = "127.0.0.1";

export interface Metric<K extends string = string> {
  /** Key in the figures a client run reports, e.g. `"p50Us"`. */
  readonly key: K;
  /** Column text, e.g. `"p50 latency"`. */
  readonly label: string;
  /** Unit shown next to the label, e.g. `"µs"` or `"ops/s"`. */
  readonly unit: string;
  /** Which way is good: for `"lower"` a ratio above 1 means swarmnet is behind. */
  readonly better: "higher" | "lower";
}

/** One measured run's figures, one number per metric. */
export type Figures<K extends string = string> = Record<K, number>;

/** What a server part hands back once it listens. */
export interface RunningServer {
  readonly port: number;
  stop(): Promise<void>;
}

export interface ServerContext {
  readonly host: typeof BENCH_HOST;
}

/** The gateway process's memory, as `process.memoryUsage()` reports it. */
export interface ServerMemory {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
}

export interface ClientContext {
  readonly host: typeof BENCH_HOST;
  /** Where to connect: the server's port, or the latency relay's in front of it. */
  readonly port: number;
  /** True for the warm-up pass, whose figures are thrown away. */
  readonly warmup: boolean;
  /** Asks the server process for its memory now (through the runner). */
  serverMemory(): Promise<ServerMemory>;
}

/** Starts the server side and resolves once it accepts connections. */
export type ServerPart<P> = (params: P, ctx: ServerContext) => Promise<RunningServer>;

/**
 * One run of the client side: connect, measure, disconnect. Only the part the
 * workload names is timed (connecting is excluded unless it is the point).
 */
export type ClientPart<P, K extends string> = (params: P, ctx: ClientContext) => Promise<Figures<K>>;

export interface SystemModule<P, K extends string> {
  readonly server: ServerPart<P>;
  readonly client: ClientPart<P, K>;
}

export interface WorkloadDefinition<P, K extends string> {
  /** `"W1"`: what `npm run bench -- W1` selects. */
  readonly id: string;
  /** Short name for the table, e.g. `"ping"`. */
  readonly name: string;
  readonly description: string;
  readonly metrics: readonly Metric<K>[];
  /** Sizes for a scale of 1 (the full workload); `--quick` passes 0.1. */
  params(scale: number): P;
  /**
   * Runs in fresh processes each (with their own warm-up) instead of one
   * process pair for all runs: for figures that a previous run would skew,
   * such as the server's memory.
   * @default false
   */
  readonly freshProcessPerRun?: boolean;
  /**
   * Round trip a latency relay adds between client and server for this
   * workload, whatever `--rtt` says (W7 is W4 over a long link).
   * @default the run's `--rtt`
   */
  readonly rttMs?: number;
  /**
   * File descriptors each of its processes needs at `scale` (W6b: 10,000
   * connections, each a TCP socket plus libzmq mailboxes for the socket and its
   * monitor). Where the soft limit is lower, the workers start under
   * `prlimit --nofile=N:M`; raising the hard limit needs CAP_SYS_RESOURCE (root
   * outside a container), and without it the workload fails with a message
   * naming the limit.
   * @default the limit the bench was started with
   */
  fileDescriptors?(scale: number): number;
  /**
   * Runs only when named (`npm run bench -- W6b`), not in a plain `npm run bench`:
   * for workloads that take minutes or need privileges.
   * @default false
   */
  readonly optIn?: boolean;
  /**
   * Measured runs, whatever `--runs` says, and no warm-up run (each run starts
   * fresh processes already): for workloads too heavy to repeat.
   * @default the run's `--runs`
   */
  readonly runs?: number;
  /**
   * The systems that implement it, each loaded only in its own worker process.
   * A system left out is shown as n/a.
   */
  readonly systems: Partial<Record<SystemName, () => Promise<SystemModule<P, K>>>>;
}

/** The runner's view of a workload, with its parameter types erased. */
export type AnyWorkload = WorkloadDefinition<unknown, string>;

/** Identity with type inference, so a workload's modules are checked against its params. */
export function defineWorkload<P, K extends string>(def: WorkloadDefinition<P, K>): AnyWorkload {
  return def as unknown as AnyWorkload;
}

/** `Math.round(n * scale)`, but never below `min`: a quick run still does something. */
export function scaled(n: number, scale: number, min = 1): number {
  return Math.max(min, Math.round(n * scale));
}
