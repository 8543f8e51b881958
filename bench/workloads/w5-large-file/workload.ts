import { freshDir } from "../../lib/files.js";
import { defineWorkload, scaled, type Figures } from "../../workload.js";

export interface LargeFileParams {
  /** Size of the one file, in bytes. */
  readonly bytes: number;
  /** Clients of the swarm run (the first run uses one). */
  readonly swarm: number;
}

export type LargeFileMetric = "mbPerSec1" | "mbPerSecSwarm";

export const w5 = defineWorkload<LargeFileParams, LargeFileMetric>({
  id: "W5",
  name: "large file",
  description: "one 512 MiB file with 1 client and with a swarm of 4",
  metrics: [
    { key: "mbPerSec1", label: "1 client", unit: "MB/s", better: "higher" },
    { key: "mbPerSecSwarm", label: "swarm of 4", unit: "MB/s", better: "higher" },
  ],
  params: (scale) => ({ bytes: scaled(512, scale, 8) * 1024 * 1024, swarm: 4 }),
  systems: {
    swarmnet: () => import("./swarmnet.js"),
    zeromq: () => import("./zeromq.js"),
    tcp: () => import("./tcp.js"),
  },
});

/** `clients` connections, ready to download the server's one file into `dir`. */
export interface LargeFileSession {
  /** Downloads the file (`bytes` long) into `dir/big.bin`. */
  download(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The measured part, the same for every system: with 1 client and with the
 * swarm, connect (untimed), download the file into a fresh folder (timed),
 * check its size (untimed). The warm-up pass downloads the server's file once
 * with one client, whatever its size (the server made it at full size).
 */
export async function measureLargeFile(
  params: LargeFileParams,
  warmup: boolean,
  open: (clients: number, dir: string) => Promise<LargeFileSession>,
  size: (path: string) => Promise<number>,
): Promise<Figures<LargeFileMetric>> {
  const rates: number[] = [];
  for (const clients of warmup ? [1] : [1, params.swarm]) {
    const target = await freshDir();
    const session = await open(clients, target.dir);
    try {
      const start = process.hrtime.bigint();
      await session.download();
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const got = await size(`${target.dir}/big.bin`);
      if (!warmup && got !== params.bytes) throw new Error(`downloaded ${got} bytes, ${params.bytes} expected`);
      rates.push(got / 1e6 / seconds);
    } finally {
      await session.close();
      await target.remove();
    }
  }
  return { mbPerSec1: rates[0]!, mbPerSecSwarm: rates[1] ?? 0 };
}
