/**
 * W1py and W3apy: W1 (ping) and W3a (stream small) with the Python client
 * (`clients/python`) against the same swarmnet gateway as the Node client's
 * W1 and W3a, so the table shows the two clients side by side. The client part
 * runs `client.py` under `/usr/bin/python3` (with `python3-zmq` and
 * `python3-cbor2`); only swarmnet has a Python client, so the peers are n/a.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { PingMetric, PingParams } from "../w1-ping/workload.js";
import type { StreamMetric, StreamParams } from "../w3-stream/workload.js";
import { defineWorkload, scaled, type ClientPart, type Figures } from "../../workload.js";

const COMPILED = import.meta.url.endsWith(".js");
/** The script lives in the source tree (the compiled bench does not copy it). */
const SCRIPT = fileURLToPath(new URL(COMPILED ? "../../../../bench/workloads/python-client/client.py" : "./client.py", import.meta.url));
/** Debian's python3, which has the python3-zmq and python3-cbor2 packages. */
export const PYTHON = process.env["SWARMNET_PYTHON"] ?? "/usr/bin/python3";

/** Runs client.py and returns the figures it prints; a run longer than `timeoutMs` is killed. */
export function runPythonClient<K extends string>(args: readonly string[], timeoutMs = 600_000): Promise<Figures<K>> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [SCRIPT, ...args], { timeout: timeoutMs, killSignal: "SIGKILL" }, (error, stdout, stderr) => {
      if (error) reject(new Error(`python client failed: ${stderr || error.message}`));
      else resolve(JSON.parse(stdout.trim().split("\n").at(-1)!) as Figures<K>);
    });
  });
}

export const pingClient: ClientPart<PingParams, PingMetric> = (params, { host, port }) =>
  runPythonClient(["ping", `tcp://${host}:${port}`, String(params.roundTrips), String(params.payloadBytes)]);

export const streamClient: ClientPart<StreamParams, StreamMetric> = (params, { host, port }) =>
  runPythonClient(["stream", `tcp://${host}:${port}`, String(params.items), String(params.itemBytes)]);

export const w1py = defineWorkload<PingParams, PingMetric>({
  id: "W1py",
  name: "ping, Python client",
  description: "W1 with the Python client: 20,000 sequential round trips of a 16-byte payload",
  metrics: [
    { key: "p50Us", label: "p50 latency", unit: "µs", better: "lower" },
    { key: "p99Us", label: "p99 latency", unit: "µs", better: "lower" },
    { key: "opsPerSec", label: "round trips", unit: "ops/s", better: "higher" },
  ],
  params: (scale) => ({ roundTrips: scaled(20_000, scale, 100), payloadBytes: 16 }),
  systems: { swarmnet: () => import("./ping.js") },
});

export const w3apy = defineWorkload<StreamParams, StreamMetric>({
  id: "W3apy",
  name: "stream small, Python client",
  description: "W3a with the Python client: one stream of 200,000 items of 64 bytes",
  metrics: [{ key: "itemsPerSec", label: "throughput", unit: "items/s", better: "higher" }],
  params: (scale) => ({ items: scaled(200_000, scale, 1_000), itemBytes: 64 }),
  systems: { swarmnet: () => import("./stream.js") },
});
