import { defineWorkload } from "../../workload.js";
import { FILES_METRICS, filesParams, type FilesMetric, type FilesParams } from "../w4-files/workload.js";

/** The round trip of the simulated long link, in ms (10 ms each way). */
export const LONG_LINK_RTT_MS = 20;

/**
 * W4 through the latency relay: the same files, servers and clients. A round
 * trip per file would cap a client at 50 files/s; pipelining (and a swarm)
 * should leave that far behind.
 */
export const w7 = defineWorkload<FilesParams, FilesMetric>({
  id: "W7",
  name: "long link",
  description: "W4 through a relay adding 20 ms of round trip, 1 and 8 clients",
  metrics: FILES_METRICS,
  params: filesParams,
  rttMs: LONG_LINK_RTT_MS,
  systems: {
    swarmnet: () => import("../w4-files/swarmnet.js"),
    zeromq: () => import("../w4-files/zeromq.js"),
    tcp: () => import("../w4-files/tcp.js"),
  },
});
