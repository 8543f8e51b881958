import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";

/** A tree of mixed sizes: empty, 1 byte, odd sizes across chunk boundaries, a few MiB, nested folders. */
export const MIXED_TREE: Record<string, number> = {
  "empty.bin": 0,
  "one.txt": 1,
  "odd.log": 12_345,
  "chunk-minus-1.bin": 256 * 1024 - 1,
  "chunk-plus-1.bin": 256 * 1024 + 1,
  "sub/app.log": 777,
  "sub/deeper/data.bin": 3 * 1024 * 1024 + 17,
  "sub/deeper/zeros.bin": -(1024 * 1024 + 3), // negative: that many zero bytes (exercises sparse writes)
  "other/notes.md": 4_099,
};

/** Writes `tree` under `root` (random bytes, or zeros for negative sizes); returns path -> sha256 hex. */
export async function writeTree(root: string, tree: Record<string, number> = MIXED_TREE): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  for (const [path, size] of Object.entries(tree)) {
    const abs = join(root, ...path.split("/"));
    await mkdir(dirname(abs), { recursive: true });
    const bytes = size < 0 ? Buffer.alloc(-size) : randomBytes(size);
    await writeFile(abs, bytes);
    hashes.set(path, sha256(bytes));
  }
  return hashes;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** path (relative, `/`-separated) -> sha256 hex of every file under `root`. */
export async function hashTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const abs = join(dir, entry.name);
      if (entry.isDirectory()) await walk(abs);
      else out.set(relative(root, abs).split(sep).join("/"), sha256(await readFile(abs)));
    }
  };
  await walk(root);
  return out;
}
