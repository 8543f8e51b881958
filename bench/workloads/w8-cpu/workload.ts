import { defineWorkload, scaled } from "../../workload.js";

export interface CpuParams {
  /** CPU each heavy call burns on the gateway, in ms. */
  readonly burnMs: number;
  /** Clients making heavy calls at once, and calls each. */
  readonly callers: number;
  readonly callsEach: number;
  /** The fifth client pings this often while the heavy calls run, in ms. */
  readonly pingEveryMs: number;
  /** Worker threads for the threaded gateway subroutines. */
  readonly threads: number;
  /** The thread hop's cost: W2-style calls (8 clients, 1 KiB replies) and a W3a-style stream (64-byte items). */
  readonly batchCalls: number;
  readonly streamItems: number;
}

export type CpuMetric =
  | "loopCallsPerSec"
  | "threadCallsPerSec"
  | "loopPingP50Us"
  | "threadPingP50Us"
  | "loopPingP99Us"
  | "threadPingP99Us"
  | "loopBatchOps"
  | "threadBatchOps"
  | "loopStreamItems"
  | "threadStreamItems";

export const w8 = defineWorkload<CpuParams, CpuMetric>({
  id: "W8",
  name: "CPU-bound",
  description:
    "4 clients x 25 calls burning 20 ms of CPU while a fifth pings every 2 ms, on the event loop and on 2 worker threads; " +
    "plus W2 and W3a through a worker-thread subroutine (the hop's cost)",
  metrics: [
    { key: "loopCallsPerSec", label: "heavy calls, in-loop", unit: "calls/s", better: "higher" },
    { key: "threadCallsPerSec", label: "heavy calls, threads", unit: "calls/s", better: "higher" },
    { key: "loopPingP50Us", label: "ping p50 in-loop", unit: "µs", better: "lower" },
    { key: "threadPingP50Us", label: "ping p50 threads", unit: "µs", better: "lower" },
    { key: "loopPingP99Us", label: "ping p99 in-loop", unit: "µs", better: "lower" },
    { key: "threadPingP99Us", label: "ping p99 threads", unit: "µs", better: "lower" },
    { key: "loopBatchOps", label: "W2 calls in-loop", unit: "ops/s", better: "higher" },
    { key: "threadBatchOps", label: "W2 calls threads", unit: "ops/s", better: "higher" },
    { key: "loopStreamItems", label: "W3a in-loop", unit: "items/s", better: "higher" },
    { key: "threadStreamItems", label: "W3a threads", unit: "items/s", better: "higher" },
  ],
  params: (scale) => ({
    burnMs: 20,
    callers: 4,
    callsEach: scaled(25, scale, 3),
    pingEveryMs: 2,
    threads: 2,
    batchCalls: scaled(20_000, scale, 200),
    streamItems: scaled(200_000, scale, 2_000),
  }),
  systems: { swarmnet: () => import("./swarmnet.js") },
});
