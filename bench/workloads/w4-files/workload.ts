import { checkFiles, freshDir, smallFileName } from "../../lib/files.js";
import { defineWorkload, scaled, type Figures } from "../../workload.js";

export interface FilesParams {
  /** Files in one measured run, and their size. */
  readonly files: number;
  readonly fileBytes: number;
  /** The run downloads every file once with each of these client counts. */
  readonly clients: readonly [1, 8];
}

export type FilesMetric = "filesPerSec1" | "filesPerSec8" | "listPerSec1" | "listPerSec8";

/**
 * Both request forms a user has: a folder (`{ folder }`) and a list of paths
 * (`{ files: [2,000 paths] }`). The peers have no folder request: they always
 * ask by name, so their two rows measure the same code twice.
 */
export const FILES_METRICS = [
  { key: "filesPerSec1", label: "folder, 1 client", unit: "files/s", better: "higher" },
  { key: "filesPerSec8", label: "folder, 8 clients", unit: "files/s", better: "higher" },
  { key: "listPerSec1", label: "files list, 1 client", unit: "files/s", better: "higher" },
  { key: "listPerSec8", label: "files list, 8 clients", unit: "files/s", better: "higher" },
] as const;

export function filesParams(scale: number): FilesParams {
  return { files: scaled(2_000, scale, 50), fileBytes: 16 * 1024, clients: [1, 8] };
}

export const w4 = defineWorkload<FilesParams, FilesMetric>({
  id: "W4",
  name: "small files",
  description: "download 2,000 files of 16 KiB with 1 and with 8 clients, asked as a folder and as a list of paths",
  metrics: FILES_METRICS,
  params: filesParams,
  systems: {
    swarmnet: () => import("./swarmnet.js"),
    zeromq: () => import("./zeromq.js"),
    tcp: () => import("./tcp.js"),
  },
});

/** `clients` connections to the server, ready to download into one folder. */
export interface FilesSession {
  /** Downloads `names` (in the server's files folder); `all` says they are the whole folder. */
  download(names: readonly string[], all: boolean): Promise<void>;
  close(): Promise<void>;
}

/**
 * The measured part, the same for every system: for each request form (the
 * folder, then the list of paths) and for 1 and then 8 clients, connect
 * (untimed), download every file into a fresh folder (timed), check every
 * size (untimed).
 */
export async function measureFiles(
  params: FilesParams,
  warmup: boolean,
  open: (clients: number, dir: string) => Promise<FilesSession>,
): Promise<Figures<FilesMetric>> {
  const names = Array.from({ length: params.files }, (_, i) => smallFileName(i));
  const rates: number[] = [];
  for (const all of [true, false]) {
    for (const clients of params.clients) {
      const target = await freshDir();
      const session = await open(clients, target.dir);
      try {
        const start = process.hrtime.bigint();
        // The warm-up pass asks for a fifth of the files: by list only (the folder holds them all).
        await session.download(names, all && !warmup);
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        await checkFiles(target.dir, params.files, params.fileBytes);
        rates.push(params.files / seconds);
      } finally {
        await session.close();
        await target.remove();
      }
    }
  }
  return { filesPerSec1: rates[0]!, filesPerSec8: rates[1]!, listPerSec1: rates[2]!, listPerSec8: rates[3]! };
}
