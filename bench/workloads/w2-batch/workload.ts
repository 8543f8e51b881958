import { opsPerSecondSince } from "../../lib/stats.js";
import { defineWorkload, scaled, type Figures } from "../../workload.js";

export interface BatchParams {
  /** Calls in one measured run, shared out over the clients as they free up. */
  readonly calls: number;
  readonly clients: number;
  readonly replyBytes: number;
}

export type BatchMetric = "opsPerSec";

export const w2 = defineWorkload<BatchParams, BatchMetric>({
  id: "W2",
  name: "batch get",
  description: "20,000 batch-get calls over 8 concurrent clients, 1 KiB replies",
  metrics: [{ key: "opsPerSec", label: "calls", unit: "ops/s", better: "higher" }],
  params: (scale) => ({ calls: scaled(20_000, scale, 100), clients: 8, replyBytes: 1024 }),
  systems: {
    swarmnet: () => import("./swarmnet.js"),
    zeromq: () => import("./zeromq.js"),
    grpc: () => import("./grpc.js"),
    tcp: () => import("./tcp.js"),
  },
});

/** The request every system sends: the call's index as 4 bytes. */
export function requestBytes(index: number): Buffer {
  const request = Buffer.allocUnsafe(4);
  request.writeUInt32BE(index, 0);
  return request;
}

/** One client's call: index in, reply out. */
export type BatchCall = (index: number) => Promise<{ readonly length: number }>;

/**
 * The measured part, the same for every system: one untimed call per client,
 * then `params.calls` calls, each client taking the next index as soon as its
 * previous call returns, each reply checked for its size.
 */
export async function measureBatch(params: BatchParams, clients: readonly BatchCall[]): Promise<Figures<BatchMetric>> {
  const check = (reply: { readonly length: number }): void => {
    if (reply.length !== params.replyBytes) throw new Error(`reply of ${reply.length} bytes, expected ${params.replyBytes}`);
  };
  await Promise.all(clients.map(async (call) => check(await call(0))));
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    clients.map(async (call) => {
      while (next < params.calls) check(await call(next++));
    }),
  );
  return { opsPerSec: opsPerSecondSince(params.calls, start) };
}
