/**
 * Runs workloads: for each (workload, system) it starts a server process and
 * a client process (bench/worker.ts), optionally a latency relay between them,
 * collects each run's figures over IPC and reduces them to medians and to
 * swarmnet's ratio against each peer.
 */
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isFromWorker, type FromWorker, type Role, type ToWorker } from "./ipc.js";
import { median } from "./lib/stats.js";
import { LatencyRelay } from "./relay.js";
import { BENCH_HOST, PEERS, SYSTEMS, type AnyWorkload, type Figures, type Metric, type PeerName, type SystemName } from "./workload.js";

/**
 * `npm run bench` compiles the bench and the library (tsconfig.bench.json) and
 * runs plain JavaScript, as users run the package: under tsx every stack
 * capture goes through source maps and the heap holds the compiler, which
 * distorts both latency and GC-heavy throughput. `tsx bench/run.ts` still works
 * (the quick smoke test uses it), with the workers under tsx too.
 */
const COMPILED = import.meta.url.endsWith(".js");
const WORKER_PATH = fileURLToPath(new URL(COMPILED ? "./worker.js" : "./worker.ts", import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL(COMPILED ? "../.." : "..", import.meta.url));

/** Time for both processes to load and the server to listen. */
const STARTUP_TIMEOUT_MS = 30_000;
/** Time a server gets to stop after being asked, before it is killed. */
const STOP_TIMEOUT_MS = 5_000;
/** How much of a worker's output to keep for an error report. */
const OUTPUT_TAIL_CHARS = 4_000;

export interface RunOptions {
  readonly workloads: readonly AnyWorkload[];
  /** Systems to run; the others are reported as skipped. */
  readonly systems: readonly SystemName[];
  /** Measured runs per (workload, system), after a warm-up. */
  readonly runs: number;
  /**
   * Cold runs per (workload, system): each in a freshly started server process
   * and client process, measured without a warm-up, as a user's first command
   * meets it. They make a row of their own (`W1-cold`) beside the warm one; 0
   * leaves them out. Workloads that already run in fresh processes (W6) have none.
   */
  readonly coldRuns: number;
  /** Size factor passed to each workload's `params`: 1 is the full size. */
  readonly scale: number;
  /** Round trip the relay adds between client and server; 0 connects directly. */
  readonly rttMs: number;
  /** Budget per run (the warm-up counts as one), on top of startup. */
  readonly runTimeoutMs: number;
  /** Progress lines, e.g. to stderr. */
  readonly log: (line: string) => void;
}

export type SystemOutcome =
  | { readonly status: "ok"; readonly runs: readonly Figures[]; readonly median: Figures }
  | { readonly status: "failed"; readonly error: string; readonly runs: readonly Figures[] }
  /** The workload has no module for this system. */
  | { readonly status: "n/a" }
  /** Left out with `--systems`. */
  | { readonly status: "skipped" };

export interface WorkloadResult {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly params: unknown;
  readonly metrics: readonly Metric[];
  readonly systems: Record<SystemName, SystemOutcome>;
  /** swarmnet's median divided by the peer's, per metric; null where either is missing. */
  readonly ratios: Record<PeerName, Record<string, number | null>>;
}

export async function runWorkloads(options: RunOptions): Promise<WorkloadResult[]> {
  const results: WorkloadResult[] = [];
  for (const workload of options.workloads) {
    const systems = await runSystems(workload, options, "warm");
    results.push({
      id: workload.id,
      name: workload.name,
      description: workload.description,
      params: workload.params(options.scale),
      metrics: workload.metrics,
      systems,
      ratios: ratiosOf(workload.metrics, systems),
    });
    if (options.coldRuns > 0 && !workload.freshProcessPerRun) {
      const cold = await runSystems(workload, options, "cold");
      results.push({
        id: `${workload.id}-cold`,
        name: `${workload.name}, cold`,
        description: `${workload.description}; each run in a freshly started server and client process, no warm-up`,
        params: workload.params(options.scale),
        metrics: workload.metrics,
        systems: cold,
        ratios: ratiosOf(workload.metrics, cold),
      });
    }
  }
  return results;
}

/** Every system of a workload, warm or cold: run, or marked n/a (no module) or skipped (`--systems`). */
async function runSystems(workload: AnyWorkload, options: RunOptions, mode: "warm" | "cold"): Promise<Record<SystemName, SystemOutcome>> {
  const outcomes = {} as Record<SystemName, SystemOutcome>;
  for (const system of SYSTEMS) {
    outcomes[system] = !workload.systems[system]
      ? { status: "n/a" }
      : !options.systems.includes(system)
        ? { status: "skipped" }
        : await runSystem(workload, system, options, mode);
  }
  return outcomes;
}

async function runSystem(
  workload: AnyWorkload,
  system: SystemName,
  options: RunOptions,
  mode: "warm" | "cold" = "warm",
): Promise<SystemOutcome> {
  const label = `${workload.id}${mode === "cold" ? "-cold" : ""} ${workload.name} / ${system}`;
  const started = performance.now();
  const runs: Figures[] = [];
  try {
    if (mode === "cold") {
      // No warm-up anywhere: fresh processes, and the first run is the one measured.
      for (let i = 0; i < options.coldRuns; i++) {
        runs.push(...(await runSession(workload, system, options, { runs: 1, warmup: false })));
      }
    } else if (workload.freshProcessPerRun) {
      // The warm-up is a whole run of its own, thrown away (not for a workload that caps its runs).
      if (workload.runs === undefined) await runSession(workload, system, options, { runs: 1, warmup: false });
      for (let i = 0; i < (workload.runs ?? options.runs); i++) {
        runs.push(...(await runSession(workload, system, options, { runs: 1, warmup: false })));
      }
    } else {
      runs.push(...(await runSession(workload, system, options, { runs: options.runs, warmup: true })));
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    options.log(`${label}: FAILED after ${runs.length} run(s): ${message}`);
    return { status: "failed", error: message, runs };
  }
  options.log(`${label}: ${runs.length} runs in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { status: "ok", runs, median: medianOf(workload.metrics, runs) };
}

function medianOf(metrics: readonly Metric[], runs: readonly Figures[]): Figures {
  const result: Figures = {};
  for (const { key } of metrics) {
    result[key] = median(runs.map((figures) => figureOf(figures, key)));
  }
  return result;
}

function figureOf(figures: Figures, key: string): number {
  const value = figures[key];
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new Error(`run reported ${key} = ${String(value)}`);
  }
  return value;
}

function ratiosOf(metrics: readonly Metric[], systems: Record<SystemName, SystemOutcome>): Record<PeerName, Record<string, number | null>> {
  const ours = systems.swarmnet;
  const ratios = {} as Record<PeerName, Record<string, number | null>>;
  for (const peer of PEERS) {
    const theirs = systems[peer];
    ratios[peer] = {};
    for (const { key } of metrics) {
      const a = ours.status === "ok" ? ours.median[key] : undefined;
      const b = theirs.status === "ok" ? theirs.median[key] : undefined;
      ratios[peer][key] = a !== undefined && b !== undefined && b > 0 ? a / b : null;
    }
  }
  return ratios;
}

/**
 * One server process and one client process, alive for `runs` runs; always
 * leaves both ended, whatever happens.
 */
async function runSession(
  workload: AnyWorkload,
  system: SystemName,
  options: RunOptions,
  plan: { readonly runs: number; readonly warmup: boolean },
): Promise<Figures[]> {
  const fileDescriptors = workload.fileDescriptors?.(options.scale);
  const server = new WorkerProcess(workload.id, system, "server", options.scale, fileDescriptors);
  const client = new WorkerProcess(workload.id, system, "client", options.scale, fileDescriptors);
  let relay: LatencyRelay | undefined;
  let deadline: NodeJS.Timeout | undefined;
  try {
    const budgetMs = STARTUP_TIMEOUT_MS + options.runTimeoutMs * (plan.runs + (plan.warmup ? 1 : 0));
    const timedOut = new Promise<never>((_, reject) => {
      deadline = setTimeout(() => reject(new Error(`timed out after ${budgetMs / 1000} s`)), budgetMs);
    });
    const figures: Figures[] = [];
    const finished = new Promise<Figures[]>((resolve, reject) => {
      const onMessage = (from: WorkerProcess, message: FromWorker): void => {
        switch (message.type) {
          case "run":
            figures.push(message.figures);
            break;
          case "done":
            resolve(figures);
            break;
          case "probe":
            server.send(message);
            break;
          case "probe.result":
            client.send(message);
            break;
          case "error":
            reject(new Error(`${from.role}: ${message.message}`));
            break;
          case "ready":
            break;
        }
      };
      for (const worker of [server, client]) {
        worker.onMessage = (message) => onMessage(worker, message);
        void worker.exited.then(({ code, signal }) =>
          reject(new Error(`${worker.role} exited early (code ${code}, signal ${signal})${worker.outputTail()}`)),
        );
      }
    });
    // Whichever settles first wins; keep the other from being an unhandled rejection.
    finished.catch(() => undefined);
    timedOut.catch(() => undefined);

    const notStarted = finished.then((): never => {
      throw new Error("client finished before it was started");
    });
    const [port] = await Promise.race([Promise.all([server.ready, client.ready]), notStarted, timedOut]);
    if (port === undefined) throw new Error("server reported no port");
    let target = port;
    const rttMs = workload.rttMs ?? options.rttMs;
    if (rttMs > 0) {
      relay = new LatencyRelay({ targetHost: BENCH_HOST, targetPort: port, delayMs: rttMs / 2 });
      target = await relay.start();
    }
    client.send({ type: "start", port: target, runs: plan.runs, warmup: plan.warmup });
    return await Promise.race([finished, timedOut]);
  } finally {
    clearTimeout(deadline);
    // A client has exited after "done"; one that has not is killed. Either way
    // nothing of this session is left running when the next one starts.
    client.kill();
    await Promise.all([client.exited, server.stop(STOP_TIMEOUT_MS)]);
    await relay?.stop();
  }
}

/** A forked bench/worker.ts with its IPC channel and the tail of its output. */
/** This process's file-descriptor limits (`ulimit -Sn` / `-Hn`); Infinity for unlimited. */
function fileLimits(): { soft: number; hard: number } {
  const read = (flag: string): number => {
    const text = execFileSync("sh", ["-c", `ulimit ${flag}`], { encoding: "utf8" }).trim();
    return text === "unlimited" ? Infinity : Number(text);
  };
  return { soft: read("-Sn"), hard: read("-Hn") };
}

/**
 * How to start a worker that needs `wanted` file descriptors: undefined when the
 * soft limit allows it already, else prlimit with the raised limits.
 * @throws Error when the hard limit is lower and this is not root (only root may raise it), or prlimit is missing.
 */
function raisedLimit(wanted: number): { prlimit: string; args: string[] } | undefined {
  const { soft, hard } = fileLimits();
  if (soft >= wanted) return undefined;
  const prlimit = ["/usr/bin/prlimit", "/bin/prlimit"].find((p) => existsSync(p));
  if (prlimit === undefined)
    throw new Error(`needs ${wanted} file descriptors (the soft limit is ${soft}) and prlimit (util-linux) to raise it`);
  const args = [`--nofile=${wanted}:${hard === Infinity ? "unlimited" : Math.max(wanted, hard)}`];
  try {
    execFileSync(prlimit, [...args, "true"], { stdio: "pipe" });
  } catch (err) {
    const why = String((err as { stderr?: Buffer }).stderr ?? err).trim();
    throw new Error(
      `needs ${wanted} file descriptors; the limit here is ${soft} (hard ${hard}) and raising it failed (${why}): ` +
        "it needs CAP_SYS_RESOURCE, e.g. root outside a container, or ulimit -Hn raised before the bench starts",
      { cause: err },
    );
  }
  return { prlimit, args };
}

class WorkerProcess {
  readonly role: Role;
  /** Resolves when the worker says it is ready (with the server's port). */
  readonly ready: Promise<number | undefined>;
  /** Resolves when the process has exited, for whatever reason. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  onMessage: (message: FromWorker) => void = () => undefined;
  readonly #child: ChildProcess;
  #output = "";

  constructor(workloadId: string, system: SystemName, role: Role, scale: number, fileDescriptors?: number) {
    this.role = role;
    const nodeArgs = COMPILED ? [] : ["--import", "tsx"];
    const raised = fileDescriptors === undefined ? undefined : raisedLimit(fileDescriptors);

    this.#child = fork(WORKER_PATH, [workloadId, system, role, String(scale)], {
      cwd: REPO_ROOT,
      // prlimit sets the limit and execs node, which keeps the IPC channel fork() opened.
      ...(raised === undefined
        ? { execArgv: nodeArgs }
        : { execPath: raised.prlimit, execArgv: [...raised.args, process.execPath, ...nodeArgs] }),
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_CHARS);
    };
    this.#child.stdout?.on("data", keep);
    this.#child.stderr?.on("data", keep);
    this.exited = new Promise((resolve) => {
      // "close", not "exit": it comes after the last IPC message has been read.
      this.#child.once("close", (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal }));
    });
    this.ready = new Promise((resolve, reject) => {
      this.#child.on("message", (message: unknown) => {
        if (!isFromWorker(message)) return;
        if (message.type === "ready") resolve(message.port);
        else if (message.type === "error") reject(new Error(`${role}: ${message.message}`));
        this.onMessage(message);
      });
      void this.exited.then(() => reject(new Error(`${role} exited before it was ready${this.outputTail()}`)));
    });
    this.ready.catch(() => undefined);
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  send(message: ToWorker): void {
    if (this.running && this.#child.connected) this.#child.send(message);
  }

  /** The last of what the process printed, for an error message. */
  outputTail(): string {
    const tail = this.#output.trim();
    return tail ? `\n--- ${this.role} output ---\n${tail}` : "";
  }

  kill(): void {
    if (this.running) this.#child.kill("SIGKILL");
  }

  /** Asks the worker to stop, and kills it if it has not exited in time. */
  async stop(timeoutMs: number): Promise<void> {
    if (!this.running) return;
    this.send({ type: "stop" });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([this.exited, late]);
    clearTimeout(timer);
    this.kill();
    await this.exited;
  }
}
