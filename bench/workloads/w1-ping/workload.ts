import { LatencyRecorder } from "../../lib/stats.js";
import { defineWorkload, scaled, type Figures } from "../../workload.js";

export interface PingParams {
  /** Sequential round trips in one measured run. */
  readonly roundTrips: number;
  readonly payloadBytes: number;
}

export type PingMetric = "p50Us" | "p99Us" | "opsPerSec";

export const w1 = defineWorkload<PingParams, PingMetric>({
  id: "W1",
  name: "ping",
  description: "20,000 sequential round trips of a 16-byte payload on one connection",
  metrics: [
    { key: "p50Us", label: "p50 latency", unit: "µs", better: "lower" },
    { key: "p99Us", label: "p99 latency", unit: "µs", better: "lower" },
    { key: "opsPerSec", label: "round trips", unit: "ops/s", better: "higher" },
  ],
  params: (scale) => ({ roundTrips: scaled(20_000, scale, 100), payloadBytes: 16 }),
  systems: {
    swarmnet: () => import("./swarmnet.js"),
    zeromq: () => import("./zeromq.js"),
    grpc: () => import("./grpc.js"),
    tcp: () => import("./tcp.js"),
  },
});

/**
 * The measured part, the same for every system: one untimed round trip to
 * settle the connection, then `roundTrips` timed ones, each checked to have
 * echoed the whole payload.
 */
export async function measurePings(
  params: PingParams,
  ping: (payload: Buffer) => Promise<{ readonly length: number }>,
): Promise<Figures<PingMetric>> {
  const payload = Buffer.alloc(params.payloadBytes, 0x5a);
  const check = (reply: { readonly length: number }): void => {
    if (reply.length !== payload.length) throw new Error(`echo of ${reply.length} bytes, expected ${payload.length}`);
  };
  check(await ping(payload));
  const latency = new LatencyRecorder(params.roundTrips);
  const start = process.hrtime.bigint();
  for (let i = 0; i < params.roundTrips; i++) {
    const sent = process.hrtime.bigint();
    const reply = await ping(payload);
    latency.record(sent);
    check(reply);
  }
  return latency.summary(process.hrtime.bigint() - start);
}
