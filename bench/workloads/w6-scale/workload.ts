import { defineWorkload, scaled, type ClientContext, type Figures } from "../../workload.js";

export interface ScaleParams {
  /** Clients connected at once, each with its own connection. */
  readonly clients: number;
  readonly pingsPerClient: number;
  /** The gateway's pool: room for every client. */
  readonly maxPoolSize: number;
}

export type ScaleMetric = "wallMs" | "rssPerClientKiB";

export const w6 = defineWorkload<ScaleParams, ScaleMetric>({
  id: "W6",
  name: "scale",
  description: "1,000 clients on one gateway (pool 1,000), 10 pings each, all at once",
  metrics: [
    { key: "wallMs", label: "wall time", unit: "ms", better: "lower" },
    { key: "rssPerClientKiB", label: "gateway RSS per client", unit: "KiB", better: "lower" },
  ],
  params: (scale) => ({ clients: scaled(1_000, scale), pingsPerClient: 10, maxPoolSize: 1_000 }),
  // The gateway's memory is measured against its freshly started self: a
  // warm-up or earlier run in the same process would leave freed memory that
  // the measured clients reuse.
  freshProcessPerRun: true,
  // grpc-js and raw TCP have no gateway with a pool of sessions to compare with.
  systems: {
    swarmnet: () => import("./swarmnet.js"),
    zeromq: () => import("./zeromq.js"),
  },
});

/** W6 at ten times the clients: opt-in (minutes, and 65,536 file descriptors per process). */
export const w6b = defineWorkload<ScaleParams, ScaleMetric>({
  id: "W6b",
  name: "scale, 10,000 clients",
  description: "10,000 clients on one gateway (pool 10,000), 10 pings each, all at once; opt-in: npm run bench -- W6b",
  metrics: [
    { key: "wallMs", label: "wall time", unit: "ms", better: "lower" },
    { key: "rssPerClientKiB", label: "gateway RSS per client", unit: "KiB", better: "lower" },
  ],
  params: (scale) => ({ clients: scaled(10_000, scale), pingsPerClient: 10, maxPoolSize: scaled(10_000, scale) }),
  freshProcessPerRun: true,
  // Per connection: its TCP socket, the DEALER's mailbox and the monitor pair's two (client side).
  fileDescriptors: (scale) => scaled(10_000, scale) * 5 + 1_024,
  optIn: true,
  runs: 1,
  systems: {
    swarmnet: () => import("./swarmnet.js"),
    zeromq: () => import("./zeromq.js"),
  },
});

export interface ScaleClient {
  ping(payload: Buffer): Promise<{ readonly length: number }>;
  close(): Promise<void>;
}

const PAYLOAD = Buffer.alloc(16, 0x5a);

/**
 * The measured part, the same for every system: all clients connect at once
 * and ping their pings one after another; the wall time runs until the last
 * reply. The gateway's RSS is read before and while all are still connected.
 */
export async function measureScale(
  params: ScaleParams,
  context: ClientContext,
  connect: () => Promise<ScaleClient>,
): Promise<Figures<ScaleMetric>> {
  const before = await context.serverMemory();
  const start = process.hrtime.bigint();
  const clients = await Promise.all(
    Array.from({ length: params.clients }, async () => {
      const client = await connect();
      for (let i = 0; i < params.pingsPerClient; i++) {
        const reply = await client.ping(PAYLOAD);
        if (reply.length !== PAYLOAD.length) throw new Error(`echo of ${reply.length} bytes, expected ${PAYLOAD.length}`);
      }
      return client;
    }),
  );
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  const during = await context.serverMemory();
  await Promise.all(clients.map((client) => client.close()));
  return { wallMs, rssPerClientKiB: (during.rss - before.rss) / 1024 / params.clients };
}
