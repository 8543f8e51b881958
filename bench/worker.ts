/**
 * One side of one system in one workload, in its own process:
 *
 *     tsx bench/worker.ts <workload> <system> server|client <scale>
 *
 * The runner forks it with an IPC channel (see ipc.ts). It is not meant to be
 * started by hand.
 */
import { isToWorker, type FromWorker, type ToWorker } from "./ipc.js";
import { BENCH_HOST, SYSTEMS, type ServerMemory, type SystemName } from "./workload.js";
import { findWorkload } from "./workloads/index.js";

/** The warm-up pass is this fraction of a measured run. */
const WARMUP_FRACTION = 0.2;
/** A server that does not stop within this long is left to `process.exit`. */
const STOP_GRACE_MS = 3_000;

function send(message: FromWorker): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) {
      reject(new Error("bench/worker.ts must be started by the runner (no IPC channel)"));
      return;
    }
    process.send(message, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

function memoryNow(): ServerMemory {
  const { rss, heapUsed, external } = process.memoryUsage();
  return { rss, heapUsed, external };
}

function onMessage(handler: (message: ToWorker) => void): void {
  process.on("message", (message: unknown) => {
    if (isToWorker(message)) handler(message);
  });
}

async function fail(error: unknown): Promise<never> {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  await send({ type: "error", message }).catch(() => undefined);
  process.exit(1);
}

async function main(): Promise<void> {
  const [workloadId = "", systemName = "", role = "", scaleText = "1"] = process.argv.slice(2);
  const workload = findWorkload(workloadId);
  if (!workload) throw new Error(`unknown workload ${JSON.stringify(workloadId)}`);
  if (!(SYSTEMS as readonly string[]).includes(systemName)) throw new Error(`unknown system ${JSON.stringify(systemName)}`);
  const load = workload.systems[systemName as SystemName];
  if (!load) throw new Error(`${workload.id} has no ${systemName} module`);
  if (role !== "server" && role !== "client") throw new Error(`role must be server or client, got ${JSON.stringify(role)}`);
  const scale = Number(scaleText);
  if (!(scale > 0)) throw new Error(`scale must be a positive number, got ${JSON.stringify(scaleText)}`);

  // The runner ends us when it goes away, whatever we are doing.
  process.on("disconnect", () => process.exit(0));

  const system = await load();
  const params = workload.params(scale);
  if (role === "server") {
    const server = await system.server(params, { host: BENCH_HOST });
    onMessage((message) => {
      if (message.type === "probe") {
        void send({ type: "probe.result", id: message.id, memory: memoryNow() });
      } else if (message.type === "stop") {
        const grace = new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref());
        void Promise.race([server.stop(), grace]).then(
          () => process.exit(0),
          (error: unknown) => fail(error),
        );
      }
    });
    await send({ type: "ready", port: server.port });
    return;
  }

  const probes = new Map<number, (memory: ServerMemory) => void>();
  let nextProbe = 0;
  const serverMemory = (): Promise<ServerMemory> =>
    new Promise((resolve) => {
      const id = nextProbe++;
      probes.set(id, resolve);
      void send({ type: "probe", id });
    });

  onMessage((message) => {
    if (message.type === "probe.result") {
      probes.get(message.id)?.(message.memory);
      probes.delete(message.id);
    } else if (message.type === "start") {
      const { port, runs, warmup } = message;
      void (async () => {
        const context = { host: BENCH_HOST, port, serverMemory } as const;
        if (warmup) await system.client(workload.params(scale * WARMUP_FRACTION), { ...context, warmup: true });
        for (let index = 0; index < runs; index++) {
          const figures = await system.client(params, { ...context, warmup: false });
          await send({ type: "run", index, figures });
        }
        await send({ type: "done" });
        process.exit(0);
      })().catch(fail);
    }
  });
  await send({ type: "ready" });
}

main().catch(fail);
