/**
 * Files for the transfer workloads (W4, W5, W7): the server side makes them
 * once in a temp dir; every client run downloads into a fresh folder (a
 * reused one would let the page cache and existing inodes flatter later runs)
 * and checks every size before the figure counts.
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, open, readdir, rm, stat, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Where file workloads keep their files: tmpfs when the machine has one, so
 * that the transfer is measured rather than the disk (on the 2-core test VM a
 * plain disk creates about 1,100 small files a second, whatever writes them).
 * `SWARMNET_BENCH_DIR` picks another place, e.g. a real disk.
 */
export const BENCH_DIR = process.env["SWARMNET_BENCH_DIR"] ?? (existsSync("/dev/shm") ? "/dev/shm" : tmpdir());

/** The folder the servers serve files from, under their temp root. */
export const FILES_FOLDER = "files";

/** Name of small file `i`: sorts in index order. */
export function smallFileName(i: number): string {
  return `f${String(i).padStart(6, "0")}.bin`;
}

/** A temp root holding `FILES_FOLDER/` with `count` random files of `bytes` each. */
export async function makeSmallFiles(count: number, bytes: number): Promise<{ root: string; dir: string; remove(): Promise<void> }> {
  const root = await mkdtemp(join(BENCH_DIR, "swarmnet-bench-files-"));
  const dir = join(root, FILES_FOLDER);
  await mkdir(dir);
  for (let i = 0; i < count; i++) await writeFile(join(dir, smallFileName(i)), randomBytes(bytes));
  return { root, dir, remove: () => rm(root, { recursive: true, force: true }) };
}

/**
 * A temp root holding `FILES_FOLDER/big.bin` of `bytes`: a random 1 MiB block
 * repeated (not zeros, which a receiver may skip writing).
 */
export async function makeLargeFile(bytes: number): Promise<{ root: string; path: string; remove(): Promise<void> }> {
  const root = await mkdtemp(join(BENCH_DIR, "swarmnet-bench-large-"));
  await mkdir(join(root, FILES_FOLDER));
  const path = join(root, FILES_FOLDER, "big.bin");
  const block = randomBytes(1024 * 1024);
  const fh = await open(path, "w");
  try {
    for (let written = 0; written < bytes;) {
      const n = Math.min(block.length, bytes - written);
      await fh.write(block, 0, n, written);
      written += n;
    }
  } finally {
    await fh.close();
  }
  return { root, path, remove: () => rm(root, { recursive: true, force: true }) };
}

/** A fresh, empty download folder; `remove()` after the run (untimed). */
export async function freshDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(BENCH_DIR, "swarmnet-bench-dl-"));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Throws unless `dir` holds exactly `count` files of `bytes` each. */
export async function checkFiles(dir: string, count: number, bytes: number): Promise<void> {
  const names = (await readdir(dir)).filter((n) => !n.endsWith(".part"));
  if (names.length !== count) throw new Error(`${names.length} files downloaded, ${count} expected`);
  for (const name of names) {
    const { size } = await stat(join(dir, name));
    if (size !== bytes) throw new Error(`${name} is ${size} bytes, ${bytes} expected`);
  }
}

/** Splits `[0, size)` into `parts` contiguous ranges (the last takes the rest). */
export function ranges(size: number, parts: number): Array<{ start: number; end: number }> {
  const span = Math.ceil(size / parts);
  const out: Array<{ start: number; end: number }> = [];
  for (let start = 0; start < size; start += span) out.push({ start, end: Math.min(size, start + span) });
  return out;
}
