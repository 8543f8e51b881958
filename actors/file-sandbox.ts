/**
 * Where files may come from and go to. Downloads are served only from inside
 * a file root, uploads land only inside the download dir: every requested
 * path is normalized (`protocol/paths.ts`: `logs/` and `./logs` mean `logs`),
 * then resolved with `realpath` and checked for containment, so a symlink
 * leading out of its root is refused, not followed, while an absolute path
 * that lies inside a root is served (pynetwork's `folder='/srv/logs'`).
 * Refusals name the roots.
 *
 * A folder listing is recursive, as deep as the file system goes (no depth
 * limit; the number of entries is bounded). It never skips in silence: a
 * folder it cannot read, a FIFO, a device, a socket, a symlink leading out of
 * the root or to a folder, and a name that is not UTF-8 come back as
 * `problems` with a reason; empty folders come back as `folders`. The regex
 * (if any) is matched against each path relative to the folder,
 * `/`-separated (`sub/app.log`), in a worker thread with a deadline, so a
 * catastrophic pattern from a client costs the gateway a worker, never its
 * event loop.
 */
import { realpathSync, statSync, type Stats } from "node:fs";
import { mkdir, open, readdir, realpath, stat } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { Worker } from "node:worker_threads";
import {
  DEFAULT_REGEX_TIMEOUT_MS,
  ErrorCode,
  FileAccessError,
  FileNotFoundError,
  InvalidArgumentError,
  MAX_FILES_PER_REQUEST,
  PathNotAllowedError,
  SwarmnetError,
  checkName,
  checkRelativePath,
  normalizeRequestPath,
  clearLongTimeout,
  setLongTimeout,
  type LongTimeout,
  kindOfEntry,
} from "../protocol/index.js";
import { PART_SUFFIX, isTempInUse, isTransferFile, localFileError, sha256Prefix, transferFilesIn } from "./part-file.js";
import { READ_NO_FOLLOW, checkReadable } from "./file-transfer.js";

const STAT_SLICE = 64;
const STAT_SLICE_BUDGET_MS = 2;

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
  readonly mtimeMs: number;
  readonly sha256?: Uint8Array;
}

/** A path a listing cannot offer, and why. */
export interface ListedProblem {
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

export interface Listing {
  readonly files: ListedFile[];
  /** Empty folders, relative to the folder listed. */
  readonly folders: string[];
  readonly problems: ListedProblem[];
}

/** True when `child` is `root` or inside it (both absolute, real paths). */
export function isInside(child: string, root: string): boolean {
  return child === root || child.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** Maps a file-system error to the typed error a client should see. */
export function fileError(err: unknown, what: string): SwarmnetError {
  if (err instanceof SwarmnetError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT" || code === "ENOTDIR") return new FileNotFoundError(`${what}: no such file or folder`, { cause: err });
  if (code === "EACCES" || code === "EPERM") return new FileAccessError(`${what}: permission denied (${code})`, { cause: err });
  return new FileAccessError(`${what}: ${code ?? (err instanceof Error ? err.message : String(err))}`, { cause: err });
}

function problemOf(path: string, err: unknown): ListedProblem {
  const e = fileError(err, JSON.stringify(path));
  return { path, code: e.code, message: e.message };
}

/**
 * Makes (if needed) and returns the real path of folder `segments` under
 * `root`, refusing one that resolves outside it (a symlink out).
 * @throws PathNotAllowedError, FileAccessError (naming the folder and the cause: read-only, permission, ...)
 */
export async function ensureDirInside(root: string, segments: readonly string[]): Promise<string> {
  try {
    await mkdir(root, { recursive: true });
  } catch (err) {
    throw localFileError(err, `folder ${JSON.stringify(root)} cannot be made`);
  }
  const realRoot = await realpath(root).catch((err: unknown) => Promise.reject(fileError(err, `folder ${JSON.stringify(root)}`)));
  // One level at a time, checking before descending: `mkdir -p` through a symlink
  // would already have created folders outside before any check could refuse it.
  let dir = realRoot;
  for (const segment of segments) {
    const next = join(dir, segment);
    try {
      await mkdir(next);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") throw localFileError(err, `folder ${JSON.stringify(join(root, ...segments))} cannot be made`);
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

  #rootsText(): string {
    return this.#roots.length === 0
      ? "this gateway has no file roots"
      : `the gateway's file roots are ${this.#roots.map((r) => JSON.stringify(r)).join(", ")}`;
  }

  /**
   * The real path of a folder or file under the first root that has it, with
   * that root. `path` may be absolute (served when it lies inside a root).
   * @throws PathNotAllowedError (outside every root, `..`, a symlink out), FileNotFoundError (in no root)
   */
  async resolve(
    path: string,
    base?: { root: string; dir: string },
    roots?: ReadonlyArray<{ root: string; dir: string }>,
  ): Promise<{ root: string; real: string }> {
    const normalized = normalizeRequestPath(path);
    if (normalized.startsWith("/")) {
      if (base !== undefined) throw new PathNotAllowedError(`${JSON.stringify(path)} is absolute inside a folder request`);
      return this.#resolveAbsolute(path, normalized);
    }
    const segments = normalized === "." ? [] : normalized.split("/");
    const candidates = base ? [base] : (roots ?? (await this.realRoots()));
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
        throw fileError(err, JSON.stringify(path));
      }
      if (!isInside(real, root))
        throw new PathNotAllowedError(`${JSON.stringify(path)} leads out of its file root through a symlink (${this.#rootsText()})`);
      return { root, real };
    }
    throw new FileNotFoundError(`${JSON.stringify(path)} is not in any file root (${this.#rootsText()})`, { cause: missing });
  }

  /**
   * Refuses at once a requested path that can never be served: `..`, NUL, or
   * an absolute path outside every root (a cheap, lexical check; `resolve`
   * does the real one when the file is opened).
   * @throws PathNotAllowedError
   */
  assertRequestable(path: string): void {
    const normalized = normalizeRequestPath(path);
    if (normalized.startsWith("/") && !this.#roots.some((r) => isInside(normalized, r))) {
      throw new PathNotAllowedError(`${JSON.stringify(path)} is outside the file roots (${this.#rootsText()})`);
    }
  }

  async #resolveAbsolute(path: string, normalized: string): Promise<{ root: string; real: string }> {
    const roots = await this.realRoots();
    const lexical = roots.find(({ root }, i) => isInside(normalized, root) || isInside(normalized, this.#roots[i] ?? root));
    let real: string;
    try {
      real = await realpath(normalized);
    } catch (err) {
      if (lexical === undefined) throw new PathNotAllowedError(`${JSON.stringify(path)} is outside the file roots (${this.#rootsText()})`);
      throw fileError(err, JSON.stringify(path));
    }
    const inside = roots.find(({ root }) => isInside(real, root));
    if (inside === undefined) {
      throw new PathNotAllowedError(
        `${JSON.stringify(path)} is outside the file roots${lexical ? " (through a symlink)" : ""} (${this.#rootsText()})`,
      );
    }
    return { root: inside.root, real };
  }

  /** Every regular file under `folder` (see the module doc), optionally filtered and hashed. */
  async listFolder(
    folder: string,
    regex: { source: string; flags: string } | undefined,
    hash: boolean,
    cancelled: () => boolean,
  ): Promise<Listing> {
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
    const folders: string[] = [];
    const problems: ListedProblem[] = [];
    await this.#walk(root, real, found, folders, problems, cancelled);
    const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
    found.sort(byPath);
    let kept = found;
    let keptProblems = problems;
    let keptFolders = folders;
    if (regex !== undefined && found.length + problems.length > 0) {
      const names = [...found.map((f) => f.path), ...problems.map((p) => p.path)];
      const hits = new Set(await matchInWorker(regex, names, this.#regexTimeoutMs));
      kept = found.filter((_, i) => hits.has(i));
      keptProblems = problems.filter((_, i) => hits.has(found.length + i));
      // A filtered download recreates no folders of its own.
      keptFolders = [];
    }
    const described = await this.#describe(kept, hash, cancelled);
    return { files: described.files, folders: keptFolders.sort(), problems: [...keptProblems, ...described.problems] };
  }

  /** The given files (paths relative to a root, or absolute inside one), each checked and described. */
  async listFiles(paths: readonly string[], hash: boolean, cancelled: () => boolean): Promise<Listing> {
    const resolved: Array<{ path: string; abs: string }> = [];
    // The roots' real paths once per request, not once per path.
    const roots = await this.realRoots();
    let next = 0;
    // realpath(3) costs a few microseconds a path (warm cache) against a thread-pool round trip:
    // as #describe does with stat, slices with a turn of the event loop between, and the rest the
    // asynchronous way once a slice is slow (a cold or slow disk).
    while (next < paths.length && !cancelled()) {
      const started = performance.now();
      const end = Math.min(paths.length, next + STAT_SLICE);
      for (; next < end; next++) {
        const path = paths[next]!;
        const found = this.resolveSync(path, roots);
        resolved.push({ path, abs: found ?? (await this.resolve(path, undefined, roots)).real });
      }
      if (performance.now() - started > STAT_SLICE_BUDGET_MS) break;
      if (next < paths.length) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    for (; next < paths.length && !cancelled(); next++) {
      const path = paths[next]!;
      resolved.push({ path, abs: (await this.resolve(path, undefined, roots)).real });
    }
    const described = await this.#describe(resolved, hash, cancelled);
    return { files: described.files, folders: [], problems: described.problems };
  }

  /** The real path of upload folder `dirname` inside the download dir, made if missing. */
  async uploadDir(dirname: string): Promise<string> {
    let normalized = normalizeRequestPath(dirname, "dirname");
    if (normalized.startsWith("/")) {
      if (!isInside(normalized, this.#downloadDir)) {
        throw new PathNotAllowedError(
          `dirname ${JSON.stringify(dirname)} is outside the gateway's download folder ${JSON.stringify(this.#downloadDir)}`,
        );
      }
      normalized = relative(this.#downloadDir, normalized) || ".";
    }
    const segments = normalized === "." ? [] : checkRelativePath(normalized, "dirname");
    return ensureDirInside(this.#downloadDir, segments);
  }

  /** Checks one upload name (a single segment). */
  checkUploadName(name: string): void {
    checkName(name, "file name");
  }

  /**
   * `resolve` without the thread pool, for a relative path found in one of
   * `roots` (the first that has it, as `resolve`); undefined for anything
   * else (absolute, missing, an error), which `resolve` then answers with
   * its own result or error. Refuses a path that leads out of its root.
   */
  resolveSync(path: string, roots: ReadonlyArray<{ root: string; dir: string }>): string | undefined {
    const normalized = normalizeRequestPath(path);
    if (normalized.startsWith("/")) return undefined;
    const segments = normalized === "." ? [] : normalized.split("/");
    for (const { root, dir } of roots) {
      let real: string;
      try {
        real = realpathSync.native(join(dir, ...segments));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "ENOTDIR") continue;
        return undefined;
      }
      if (!isInside(real, root))
        throw new PathNotAllowedError(`${JSON.stringify(path)} leads out of its file root through a symlink (${this.#rootsText()})`);
      return real;
    }
    return undefined;
  }

  /** The roots that exist, by their real paths (`root`: what a path must stay inside; `dir`: where to look). */
  async realRoots(): Promise<Array<{ root: string; dir: string }>> {
    const out: Array<{ root: string; dir: string }> = [];
    for (const r of this.#roots) {
      const real = await realpath(r).catch(() => undefined);
      if (real !== undefined) out.push({ root: real, dir: real });
    }
    return out;
  }

  /** Depth-first over an explicit stack: as deep as the file system goes, bounded by the number of entries. */
  async #walk(
    root: string,
    top: string,
    out: Array<{ path: string; abs: string }>,
    folders: string[],
    problems: ListedProblem[],
    cancelled: () => boolean,
  ): Promise<void> {
    const stack: Array<{ abs: string; prefix: string }> = [{ abs: top, prefix: "" }];
    let entries = 0;
    while (stack.length > 0 && !cancelled()) {
      const { abs: dir, prefix } = stack.pop()!;
      let list;
      try {
        list = await readdir(dir, { withFileTypes: true, encoding: "buffer" });
      } catch (err) {
        if (prefix === "") throw fileError(err, "folder");
        problems.push(problemOf(prefix, err));
        continue;
      }
      // A transfer's journal, lock and .part are not the user's files (checked, not guessed from the
      // names: a user's `car.part.json` is sent like any file).
      const candidates = list.filter((e) => isTransferFile(e.name.toString()));
      const ours =
        candidates.length === 0
          ? undefined
          : await transferFilesIn(
              dir,
              candidates.map((e) => ({ name: e.name.toString(), isSymbolicLink: () => e.isSymbolicLink(), isFile: () => e.isFile() })),
              new Set(list.map((e) => e.name.toString())),
            );
      let kept = 0;
      for (const entry of list) {
        const raw = entry.name;
        const name = raw.toString();
        if (ours?.has(name)) continue;
        // The temp file of a file being received right now (an upload's NAME.<pid>.part): not a file yet.
        if (name.endsWith(PART_SUFFIX) && isTempInUse(join(dir, name))) continue;
        kept++;
        const path = prefix === "" ? name : `${prefix}/${name}`;
        if (++entries > MAX_FILES_PER_REQUEST)
          throw new InvalidArgumentError(`folder holds more than ${MAX_FILES_PER_REQUEST} entries: list a subfolder`);
        if (!Buffer.from(name).equals(raw)) {
          problems.push({
            path,
            code: ErrorCode.PATH_NOT_ALLOWED,
            message: `${JSON.stringify(path)}: the name is not valid UTF-8 and cannot be sent`,
          });
          continue;
        }
        const abs = join(dir, name);
        if (entry.isDirectory()) {
          stack.push({ abs, prefix: path });
        } else if (entry.isFile()) {
          out.push({ path, abs });
        } else if (entry.isSymbolicLink()) {
          // A link to a file inside the root is listed; one leading out, or to a folder (cycles), is reported.
          const real = await realpath(abs).catch(() => undefined);
          if (real === undefined) {
            problems.push({ path, code: ErrorCode.FILE_NOT_FOUND, message: `${JSON.stringify(path)} is a broken symlink` });
            continue;
          }
          if (!isInside(real, root)) {
            problems.push({
              path,
              code: ErrorCode.PATH_NOT_ALLOWED,
              message: `${JSON.stringify(path)} is a symlink leading out of the file root`,
            });
            continue;
          }
          const st = await stat(real).catch(() => undefined);
          if (st?.isFile()) out.push({ path, abs: real });
          else
            problems.push({
              path,
              code: ErrorCode.FILE_ACCESS,
              message: `${JSON.stringify(path)} is a symlink to ${st ? kindOfEntry(st) : "nothing"}: not followed`,
            });
        } else {
          problems.push({
            path,
            code: ErrorCode.FILE_ACCESS,
            message: `${JSON.stringify(path)} is ${kindOfEntry(entry)}, not a regular file: not sent`,
          });
        }
      }
      if (kept === 0 && prefix !== "") folders.push(prefix);
    }
  }

  async #describe(
    files: ReadonlyArray<{ path: string; abs: string }>,
    hash: boolean,
    cancelled: () => boolean,
  ): Promise<{ files: ListedFile[]; problems: ListedProblem[] }> {
    const out: Array<ListedFile | undefined> = new Array<ListedFile | undefined>(files.length);
    const problems: ListedProblem[] = [];
    const note = (f: { path: string }, st: Stats): void => {
      problems.push({
        path: f.path,
        code: ErrorCode.FILE_ACCESS,
        message: `${JSON.stringify(f.path)} is ${kindOfEntry(st)}, not a regular file: not sent`,
      });
    };
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
          let st: Stats;
          try {
            st = statSync(f.abs);
          } catch (err) {
            problems.push(problemOf(f.path, err));
            continue;
          }
          if (st.isFile()) out[next] = { path: f.path, size: st.size, mtimeMs: st.mtimeMs };
          else note(f, st);
        }
        if (performance.now() - started > STAT_SLICE_BUDGET_MS) break;
        if (next < files.length) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    // stat is a thread-pool round trip: a few at a time keeps a big folder quick. A hash reads
    // exactly the listed size through one handle (a log appended to meanwhile still matches).
    const CONCURRENCY = hash ? 4 : 32;
    const worker = async (): Promise<void> => {
      while (next < files.length && !cancelled()) {
        const i = next++;
        const f = files[i]!;
        try {
          if (!hash) {
            const st = await stat(f.abs);
            if (st.isFile()) out[i] = { path: f.path, size: st.size, mtimeMs: st.mtimeMs };
            else note(f, st);
            continue;
          }
          const fh = await open(f.abs, READ_NO_FOLLOW);
          try {
            const st = await fh.stat();
            checkReadable(fh, f.path, 0);
            out[i] = { path: f.path, size: st.size, mtimeMs: st.mtimeMs, sha256: await sha256Prefix(f.abs, st.size, fh) };
          } finally {
            await fh.close();
          }
        } catch (err) {
          problems.push(problemOf(f.path, err));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, worker));
    return { files: out.filter((f): f is ListedFile => f !== undefined), problems };
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
export async function matchInWorker(
  regex: { source: string; flags: string },
  names: readonly string[],
  timeoutMs: number,
): Promise<number[]> {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  let timer: LongTimeout | undefined;
  try {
    return await new Promise<number[]>((resolve, reject) => {
      timer = setLongTimeout(() => {
        reject(
          new InvalidArgumentError(
            `regex /${regex.source.slice(0, 64)}/ ran longer than ${timeoutMs} ms over ${names.length} names: refused`,
          ),
        );
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
