/**
 * Where files may come from and go to. Downloads are served only from inside
 * a file root, uploads land only inside the download dir: every wire path is
 * checked by shape (`protocol/paths.ts`), then resolved with `realpath` so a
 * symlink leading out of its root is refused, not followed.
 *
 * A folder listing is recursive; the regex (if any) is matched against each
 * file's path relative to the folder, `/`-separated (`sub/app.log`), and it
 * runs in a worker thread with a deadline, so a catastrophic pattern from a
 * client costs the gateway a worker, never its event loop.
 */
import { createHash } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { lstat, mkdir, readdir, realpath, stat } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { Worker } from "node:worker_threads";
import {
  DEFAULT_REGEX_TIMEOUT_MS,
  FileAccessError,
  FileNotFoundError,
  InvalidArgumentError,
  MAX_FILES_PER_REQUEST,
  PathNotAllowedError,
  SwarmnetError,
  checkName,
  checkRelativePath,
  clearLongTimeout,
  setLongTimeout,
  type LongTimeout,
} from "../protocol/index.js";

/** Suffix of a file being received; renamed away when complete and checked. */
export const PART_SUFFIX = ".part";
const STAT_SLICE = 64;
const STAT_SLICE_BUDGET_MS = 2;
/** Folder depth a listing descends at most. */
const MAX_LIST_DEPTH = 64;

export interface FileConfig {
  /** Folders downloads may come from (resolved against the gateway's cwd). */
  readonly roots: readonly string[];
  /** Where uploads land. */
  readonly downloadDir: string;
  readonly regexTimeoutMs?: number;
}

export interface ListedFile {
  /** Relative to the folder listed (or as asked, for explicit files), `/`-separated. */
  readonly path: string;
  readonly size: number;
  readonly sha256?: Uint8Array;
}

/** True when `child` is `root` or inside it (both absolute, real paths). */
export function isInside(child: string, root: string): boolean {
  return child === root || child.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** Maps a file-system error to the typed error a client should see. */
export function fileError(err: unknown, what: string): SwarmnetError {
  if (err instanceof SwarmnetError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR") return new FileNotFoundError(`${what}: no such file or folder`, { cause: err });
  return new FileAccessError(`${what}: ${code ?? (err as Error).message}`, { cause: err });
}

/** SHA-256 of a whole file, read as a stream (bounded memory). */
export async function sha256File(path: string): Promise<Uint8Array> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest();
}

/**
 * Makes (if needed) and returns the real path of folder `segments` under
 * `root`, refusing one that resolves outside it (a symlink out).
 */
export async function ensureDirInside(root: string, segments: readonly string[]): Promise<string> {
  await mkdir(root, { recursive: true });
  const realRoot = await realpath(root);
  // One level at a time, checking before descending: `mkdir -p` through a symlink
  // would already have created folders outside before any check could refuse it.
  let dir = realRoot;
  for (const segment of segments) {
    const next = join(dir, segment);
    try {
      await mkdir(next);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw fileError(err, `folder ${segments.join("/")}`);
    }
    const real = await realpath(next);
    if (!isInside(real, realRoot)) {
      throw new PathNotAllowedError(`folder ${JSON.stringify(segments.join("/"))} leads out of its root through a symlink`);
    }
    const st = await stat(real);
    if (!st.isDirectory()) throw new FileAccessError(`${JSON.stringify(segments.join("/"))}: ${segment} is not a folder`);
    dir = real;
  }
  return dir;
}

/** Refuses a target (or its .part) that is a symlink: writing through it could land anywhere. */
export async function checkNotSymlink(path: string): Promise<void> {
  for (const p of [path, path + PART_SUFFIX]) {
    const st = await lstat(p).catch(() => undefined);
    if (st?.isSymbolicLink()) throw new PathNotAllowedError(`${JSON.stringify(p)} is a symlink: refused as a target`);
    if (st && !st.isFile()) throw new FileAccessError(`${JSON.stringify(p)} exists and is not a regular file`);
  }
}

export class FileSandbox {
  readonly #roots: readonly string[];
  readonly #downloadDir: string;
  readonly #regexTimeoutMs: number;

  constructor(config: FileConfig) {
    this.#roots = config.roots.map((r) => resolve(r));
    this.#downloadDir = resolve(config.downloadDir);
    this.#regexTimeoutMs = config.regexTimeoutMs ?? DEFAULT_REGEX_TIMEOUT_MS;
  }

  get downloadDir(): string {
    return this.#downloadDir;
  }

  /** The real path of a folder or file under the first root that has it, with that root. */
  async resolve(path: string, base?: { root: string; dir: string }): Promise<{ root: string; real: string }> {
    const segments = path === "." && base === undefined ? [] : checkRelativePath(path);
    const candidates = base ? [base] : await this.#realRoots();
    let missing: unknown;
    for (const { root, dir } of candidates) {
      let real: string;
      try {
        real = await realpath(join(dir, ...segments));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTDIR") {
          missing = err;
          continue;
        }
        throw fileError(err, path);
      }
      if (!isInside(real, root)) throw new PathNotAllowedError(`${JSON.stringify(path)} leads out of its file root through a symlink`);
      return { root, real };
    }
    throw new FileNotFoundError(`${JSON.stringify(path)} is not in any file root`, { cause: missing });
  }

  /** Every regular file under `folder` (see the module doc), optionally filtered and hashed. */
  async listFolder(folder: string, regex: { source: string; flags: string } | undefined, hash: boolean, cancelled: () => boolean): Promise<ListedFile[]> {
    // Compile here first: a syntax error is the client's mistake, answered at once.
    try {
      new RegExp(regex?.source ?? "", regex?.flags ?? "");
    } catch (err) {
      throw new InvalidArgumentError(`regex is not valid: ${(err as Error).message}`);
    }
    const { root, real } = await this.resolve(folder);
    const st = await stat(real);
    if (!st.isDirectory()) throw new FileAccessError(`${JSON.stringify(folder)} is not a folder`);
    const found: Array<{ path: string; abs: string }> = [];
    await this.#walk(root, real, "", 0, found, cancelled);
    found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    let kept = found;
    if (regex !== undefined && found.length > 0) {
      const hits = await matchInWorker(regex, found.map((f) => f.path), this.#regexTimeoutMs);
      kept = hits.map((i) => found[i]!);
    }
    return this.#describe(kept, hash, cancelled);
  }

  /** The given files (paths relative to a root), each checked and described. */
  async listFiles(paths: readonly string[], hash: boolean, cancelled: () => boolean): Promise<ListedFile[]> {
    const resolved: Array<{ path: string; abs: string }> = [];
    for (const path of paths) {
      const { real } = await this.resolve(path);
      resolved.push({ path, abs: real });
    }
    return this.#describe(resolved, hash, cancelled, true);
  }

  /** The real path of upload folder `dirname` inside the download dir, made if missing. */
  async uploadDir(dirname: string): Promise<string> {
    const segments = dirname === "." ? [] : checkRelativePath(dirname, "dirname");
    return ensureDirInside(this.#downloadDir, segments);
  }

  /** Checks one upload name (a single segment). */
  checkUploadName(name: string): void {
    checkName(name, "file name");
  }

  async #realRoots(): Promise<Array<{ root: string; dir: string }>> {
    const out: Array<{ root: string; dir: string }> = [];
    for (const r of this.#roots) {
      const real = await realpath(r).catch(() => undefined);
      if (real !== undefined) out.push({ root: real, dir: real });
    }
    return out;
  }

  async #walk(root: string, dir: string, prefix: string, depth: number, out: Array<{ path: string; abs: string }>, cancelled: () => boolean): Promise<void> {
    if (depth > MAX_LIST_DEPTH || cancelled()) return;
    const entries = await readdir(dir, { withFileTypes: true });
    for (const entry of entries) {
      const name = entry.name;
      // Names the other side could not write, and our own partial files, are not listed.
      try {
        checkName(name);
      } catch {
        continue;
      }
      if (name.endsWith(PART_SUFFIX)) continue;
      const abs = join(dir, name);
      const path = prefix === "" ? name : `${prefix}/${name}`;
      if (entry.isDirectory()) {
        await this.#walk(root, abs, path, depth + 1, out, cancelled);
      } else if (entry.isFile()) {
        out.push({ path, abs });
      } else if (entry.isSymbolicLink()) {
        // A link to a file inside the root is listed; one leading out, or to a folder (cycles), is not.
        const real = await realpath(abs).catch(() => undefined);
        if (real === undefined || !isInside(real, root)) continue;
        const st = await stat(real).catch(() => undefined);
        if (st?.isFile()) out.push({ path, abs: real });
      }
      if (out.length > MAX_FILES_PER_REQUEST) {
        throw new InvalidArgumentError(`folder holds more than ${MAX_FILES_PER_REQUEST} files: list a subfolder`);
      }
    }
  }

  async #describe(files: ReadonlyArray<{ path: string; abs: string }>, hash: boolean, cancelled: () => boolean, strict = false): Promise<ListedFile[]> {
    const out: ListedFile[] = new Array<ListedFile>(files.length);
    let next = 0;
    if (!hash) {
      // statSync costs ~3 us a file against ~15 us through the thread pool (measured, warm cache),
      // but it blocks: slices of STAT_SLICE with a turn of the event loop between, and a slice slower
      // than STAT_SLICE_BUDGET_MS (a cold or slow disk) sends the rest the asynchronous way.
      while (next < files.length && !cancelled()) {
        const started = performance.now();
        const end = Math.min(files.length, next + STAT_SLICE);
        for (; next < end; next++) {
          const f = files[next]!;
          let st;
          try {
            st = statSync(f.abs);
          } catch (err) {
            throw fileError(err, f.path);
          }
          if (strict && !st.isFile()) throw new FileAccessError(`${JSON.stringify(f.path)} is not a regular file`);
          out[next] = { path: f.path, size: st.size };
        }
        if (performance.now() - started > STAT_SLICE_BUDGET_MS) break;
        if (next < files.length) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    // stat is a thread-pool round trip: a few at a time keeps a big folder quick. A hash streams
    // its whole file through a 1 MiB buffer: fewer at once.
    const CONCURRENCY = hash ? 4 : 32;
    const worker = async (): Promise<void> => {
      while (next < files.length && !cancelled()) {
        const i = next++;
        const f = files[i]!;
        let st;
        try {
          st = await stat(f.abs);
        } catch (err) {
          throw fileError(err, f.path);
        }
        if (!st.isFile()) {
          if (strict) throw new FileAccessError(`${JSON.stringify(f.path)} is not a regular file`);
        }
        const sha = hash ? await sha256File(f.abs).catch((err: unknown) => Promise.reject(fileError(err, f.path))) : undefined;
        out[i] = sha ? { path: f.path, size: st.size, sha256: sha } : { path: f.path, size: st.size };
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, worker));
    return out.filter((f) => f !== undefined);
  }
}

// ---- regex in a worker thread -------------------------------------------------

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
parentPort.once("message", ({ source, flags, names }) => {
  try {
    const re = new RegExp(source, flags.replace(/[gy]/g, ""));
    const hits = [];
    for (let i = 0; i < names.length; i++) if (re.test(names[i])) hits.push(i);
    parentPort.postMessage({ hits });
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message) });
  }
});
`;

/**
 * Indexes of `names` that `regex` matches, computed off the event loop within
 * `timeoutMs`. One short-lived worker per listing: a stuck regex cannot be
 * interrupted, only its thread ended, and nothing lingers to keep the process alive.
 */
export async function matchInWorker(regex: { source: string; flags: string }, names: readonly string[], timeoutMs: number): Promise<number[]> {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  let timer: LongTimeout | undefined;
  try {
    return await new Promise<number[]>((resolve, reject) => {
      timer = setLongTimeout(() => {
        reject(new InvalidArgumentError(`regex /${regex.source.slice(0, 64)}/ ran longer than ${timeoutMs} ms over ${names.length} names: refused`));
      }, timeoutMs);
      worker.once("message", (m: { hits?: number[]; error?: string }) => {
        if (m.hits) resolve(m.hits);
        else reject(new InvalidArgumentError(`regex failed: ${m.error ?? "unknown error"}`));
      });
      worker.once("error", (err) => reject(new InvalidArgumentError(`regex worker failed: ${err.message}`)));
      worker.once("exit", () => reject(new InvalidArgumentError("regex worker stopped")));
      worker.postMessage({ source: regex.source, flags: regex.flags, names });
    });
  } finally {
    clearLongTimeout(timer);
    void worker.terminate();
  }
}
