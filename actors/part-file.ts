/**
 * The one home of a file being received, used by both ends (the client for
 * downloads, the gateway for uploads): a `PartFile` owns
 *
 * - `NAME.part`, the bytes so far, written by position;
 * - `NAME.part.json`, a small journal beside it (like aria2's control file):
 *   the source's identity (size, mtime) and the byte ranges really written;
 * - `NAME.part.lock`, a symlink whose target is the owner's pid: one
 *   transfer per target at a time, across processes (the same trick as
 *   Emacs's lock files: creating a symlink is atomic and holds the pid).
 *
 * Crash safety is by ordering: a range enters the journal only after the
 * write(2) of its bytes returned, and the journal is replaced whole (written
 * beside it, then renamed over it).
 * A SIGKILL therefore never leaves zeros counted as written; a `.part` whose
 * journal is missing, unreadable or names another source starts over from
 * zero. (Bytes in the page cache survive a killed process, not a power loss:
 * `verify` catches that case.) Small files (below `JOURNAL_MIN_BYTES`, 8 MiB)
 * keep no journal and no lock: restarting them costs less than recording
 * them. Their temp name carries the pid (`NAME.<pid>.part`), so two
 * processes never share one, and it is removed when a transfer stops (a
 * killed process leaves it behind; it is never resumed nor renamed).
 *
 * Temp names always fit: a name too long to take the longest suffix is cut
 * (on a character boundary) and given a short hash of the full name.
 *
 * Finishing happens once, when the written ranges cover the whole file: the
 * size is set and checked, the SHA-256 checked if one is known, and the
 * `.part` renamed to its target (replacing it, or refusing to if it appeared
 * meanwhile, by the call's `ifExists`).
 */
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { link, lstat, open, readFile, readlink, rename, symlink, unlink } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import {
  FileAccessError,
  FileBusyError,
  FileExistsError,
  FileIntegrityError,
  MAX_NAME_LENGTH_BYTES,
  PathNotAllowedError,
  SwarmnetError,
} from "../protocol/index.js";

/** What to do when a transfer's target already exists. */
export type IfExists = "overwrite" | "skip" | "rename" | "error";
/** The default for downloads and uploads: the newer copy wins, as with `cp`, rsync and pynetwork. */
export const DEFAULT_IF_EXISTS: IfExists = "overwrite";
export const IF_EXISTS_VALUES: readonly IfExists[] = ["overwrite", "skip", "rename", "error"];

export const PART_SUFFIX = ".part";
export const JOURNAL_SUFFIX = ".part.json";
export const LOCK_SUFFIX = ".part.lock";
/** The journal is written here first and renamed over the journal: it is never seen half written. */
const JOURNAL_NEXT_SUFFIX = ".part.json~";
/** Files smaller than this keep no journal: an interrupted one starts over. */
export const JOURNAL_MIN_BYTES = 8 * 1024 * 1024;
/** The journal is rewritten after this many newly written bytes, or this long after the last save (and when the transfer stops). */
const JOURNAL_EVERY_BYTES = 32 * 1024 * 1024;
const JOURNAL_EVERY_MS = 1000;
/** The longest suffix a temp name takes: `.part.json~`, or `.<pid>.part` (pids fit in 7 digits on Linux). */
const LONGEST_SUFFIX_BYTES = 16;
const WRITE_FRESH = constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;
const WRITE_INTO = constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW;

/** Who the bytes come from: a `.part` of another source is never resumed. */
export interface SourceIdentity {
  readonly size: number;
  readonly mtimeMs: number;
}

type Range = [start: number, end: number];

/** The temp base for `name`: itself, or cut to fit with `~` and 8 hex digits of its SHA-256. */
export function tempBase(name: string): string {
  if (Buffer.byteLength(name) + LONGEST_SUFFIX_BYTES <= MAX_NAME_LENGTH_BYTES) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 8);
  const budget = MAX_NAME_LENGTH_BYTES - LONGEST_SUFFIX_BYTES - 9;
  let cut = "";
  let bytes = 0;
  for (const ch of name) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > budget) break;
    cut += ch;
    bytes += n;
  }
  return `${cut}~${hash}`;
}

/** True for names a transfer may use beside its target (a journal, its next version, a lock); see `transferFilesIn` for whether one really is. */
export function isTransferFile(name: string): boolean {
  return name.endsWith(JOURNAL_SUFFIX) || name.endsWith(LOCK_SUFFIX) || name.endsWith(JOURNAL_NEXT_SUFFIX);
}

/** A journal's text as `#save` writes it (a user's `car.part.json` is not one). */
function isJournalText(text: string): boolean {
  try {
    const j = JSON.parse(text) as { v?: unknown; size?: unknown; mtimeMs?: unknown; ranges?: unknown };
    return j.v === 1 && typeof j.size === "number" && typeof j.mtimeMs === "number" && Array.isArray(j.ranges);
  } catch {
    return false;
  }
}

/**
 * The names in folder `dir` (all of them in `names`; `candidates` are those
 * for which `isTransferFile` holds) that belong to a
 * transfer, not to the user: a lock (a symlink holding a pid), a journal (its
 * text is one), the next journal and the `.part` beside either. A user's file
 * that is merely named like one (`car.part.json`, `x.part.lock`, `y.part`) is
 * not in the set: it is the user's, and a listing sends it.
 */
export async function transferFilesIn(
  dir: string,
  candidates: ReadonlyArray<{ readonly name: string; isSymbolicLink(): boolean; isFile(): boolean }>,
  names: ReadonlySet<string>,
): Promise<Set<string>> {
  const ours = new Set<string>();
  for (const entry of candidates) {
    const { name } = entry;
    let base: string | undefined;
    if (name.endsWith(LOCK_SUFFIX) && entry.isSymbolicLink()) {
      if (/^[0-9]+$/.test(await readlink(join(dir, name)).catch(() => ""))) base = name.slice(0, -LOCK_SUFFIX.length);
    } else if (name.endsWith(JOURNAL_SUFFIX) && entry.isFile()) {
      const text = await readFile(join(dir, name), "utf8").catch(() => "");
      if (text.length < 1024 * 1024 && isJournalText(text)) base = name.slice(0, -JOURNAL_SUFFIX.length);
    }
    if (base === undefined) continue;
    ours.add(name);
    for (const suffix of [PART_SUFFIX, JOURNAL_NEXT_SUFFIX]) if (names.has(base + suffix)) ours.add(base + suffix);
  }
  return ours;
}

let zeros = Buffer.alloc(0);
/** An all-zero chunk of a fresh `.part` is not written: the hole reads as zeros anyway (sparse files stay sparse). */
function isZero(buf: Uint8Array): boolean {
  // Most chunks are not zeros: three bytes say so without comparing the whole chunk.
  if (buf[0] !== 0 || buf[buf.length >> 1] !== 0 || buf[buf.length - 1] !== 0) return false;
  if (buf.length > zeros.length) zeros = Buffer.alloc(Math.max(buf.length, 256 * 1024));
  return Buffer.compare(buf, zeros.subarray(0, buf.length)) === 0;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Maps a local file-system error to a typed one naming `what`. */
export function localFileError(err: unknown, what: string): SwarmnetError {
  if (err instanceof SwarmnetError) return err;
  const code = errnoOf(err);
  const text =
    code === "ENAMETOOLONG"
      ? "the name is too long for this file system"
      : code === "EACCES" || code === "EPERM"
        ? "permission denied"
        : code === "EROFS"
          ? "read-only file system"
          : code === "ENOSPC"
            ? "no space left on the device"
            : code === "ENOTDIR"
              ? "a part of the path is not a folder"
              : code === "ENOENT"
                ? "no such file or folder"
                : (code ?? (err instanceof Error ? err.message : String(err)));
  return new FileAccessError(`${what}: ${text}${code && !text.includes(code) ? ` (${code})` : ""}`, { cause: err });
}

/**
 * Decides where a transfer to `dir/name` lands by `ifExists`: the target
 * path, or `undefined` to skip it. `present`, the names of `dir` if the
 * caller listed it, spares a stat per file. Throws FileExistsError for `"error"`,
 * PathNotAllowedError for a target that is a symlink, FileAccessError for one
 * that is not a regular file. With `"rename"`, a name another transfer of this
 * process is writing (not one of `share`: ranges of one upload land together)
 * counts as taken too: two files of one transfer never rename onto one name.
 */
export async function chooseTarget(
  dir: string,
  name: string,
  ifExists: IfExists,
  present?: ReadonlySet<string>,
  share?: string,
): Promise<string | undefined> {
  const target = join(dir, name);
  const taken = ifExists === "rename" && takenHere(target, share);
  // The caller read the folder once: a name not in it needs no lstat of its own.
  if (present !== undefined && !present.has(name) && !taken) return target;
  const st = await lstat(target).catch((err: unknown) => {
    if (errnoOf(err) === "ENOENT") return undefined;
    throw localFileError(err, target);
  });
  if (st === undefined && !taken) return target;
  if (st === undefined) return renamed(dir, name, share);
  if (st.isSymbolicLink()) throw new PathNotAllowedError(`${JSON.stringify(target)} is a symlink: refused as a target`);
  if (!st.isFile()) throw new FileAccessError(`${JSON.stringify(target)} exists and is not a regular file`);
  switch (ifExists) {
    case "overwrite":
      return target;
    case "skip":
      return undefined;
    case "error":
      throw new FileExistsError(`${JSON.stringify(target)} exists (ifExists: "error")`);
    case "rename":
      return renamed(dir, name, share);
  }
}

/** The first `NAME (i).ext` in `dir` that neither exists nor is being written by another transfer here. */
async function renamed(dir: string, name: string, share: string | undefined): Promise<string> {
  const ext = extname(name);
  const stem = ext.length > 0 && ext.length < name.length ? name.slice(0, -ext.length) : name;
  for (let i = 1; i <= 9999; i++) {
    const candidate = join(dir, `${stem} (${i})${ext === name ? "" : ext}`);
    if (!takenHere(candidate, share) && (await lstat(candidate).catch(() => undefined)) === undefined) return candidate;
  }
  throw new FileExistsError(`${JSON.stringify(join(dir, name))} exists, and so do its 9999 renamed copies`);
}

/** `path` is the target (of a transfer other than `share`'s) or a temp file of a transfer in this process. */
function takenHere(path: string, share: string | undefined): boolean {
  const slot = held.get(path);
  return (slot !== undefined && (share === undefined || slot.share !== share)) || temps.has(path);
}

/**
 * Holders of locks in this process: target -> share key and the PartFile
 * (while it opens, the promise; while it is let go, `releasing`, which a new
 * transfer of the target waits for instead of being refused).
 */
interface Slot {
  readonly share: string | undefined;
  readonly ready: Promise<PartFile>;
  part: PartFile | undefined;
  refs: number;
  releasing: Promise<void> | undefined;
}
const held = new Map<string, Slot>();
/**
 * The temp paths (`.part`, journal, lock) of the targets in `held` -> their
 * target: a target named like another's temp file (`big.bin.part` beside
 * `big.bin`) must not be renamed over it while it is written.
 */
const temps = new Map<string, string>();

/** `path` is a temp file (`.part`, journal, lock) of a transfer under way in this process: not the user's, never listed. */
export function isTempInUse(path: string): boolean {
  return temps.has(path);
}

function tempPathsOf(target: string, journaled: boolean): string[] {
  const base = join(dirname(target), tempBase(basename(target)));
  return journaled
    ? [base + PART_SUFFIX, base + JOURNAL_SUFFIX, base + JOURNAL_NEXT_SUFFIX, base + LOCK_SUFFIX]
    : [`${base}.${process.pid}${PART_SUFFIX}`];
}

function forget(target: string, slot: Slot): void {
  if (held.get(target) !== slot) return;
  held.delete(target);
  for (const [path, owner] of temps) if (owner === target) temps.delete(path);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === "EPERM";
  }
}

async function takeLock(lock: string, target: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await symlink(String(process.pid), lock);
      return;
    } catch (err) {
      if (errnoOf(err) !== "EEXIST") throw localFileError(err, `lock for ${JSON.stringify(target)}`);
    }
    const owner = Number(await readlink(lock).catch(() => "0"));
    // Ours (a transfer of this process that ended without releasing it) or a dead process's: stale.
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && pidAlive(owner)) {
      throw new FileBusyError(`${JSON.stringify(target)} is being written by another transfer (process ${owner})`);
    }
    await unlink(lock).catch(() => undefined);
  }
  throw new FileBusyError(`${JSON.stringify(target)} is being written by another transfer`);
}

export interface PartFileOptions {
  /** The final path (chosen by `chooseTarget`). */
  readonly target: string;
  readonly source: SourceIdentity;
  /** With it, the file is checked against this SHA-256 before it is renamed. */
  readonly sha256?: Uint8Array | undefined;
  /** Rename over an existing target (`overwrite`), or refuse if one appeared meanwhile. @default true */
  readonly replace?: boolean;
  /**
   * Transfers in this process with the same key share the PartFile (several
   * byte ranges of one upload); any other transfer to the target is refused
   * with FileBusyError while it is held.
   */
  readonly share?: string | undefined;
  /**
   * Keep a journal and a lock whatever the size: a byte range of a split
   * upload, whose other ranges come in other requests (maybe after this one
   * has let go), so its bytes must outlive it. @default size >= JOURNAL_MIN_BYTES
   */
  readonly journal?: boolean;
  /** A `NAME.part` (and journal) of an earlier transfer lies beside a small file's target: removed once the file is in place. */
  readonly stale?: boolean;
}

function journaled(options: PartFileOptions): boolean {
  return options.journal ?? options.source.size >= JOURNAL_MIN_BYTES;
}

/** See the module doc. Made by `PartFile.acquire`, released by `release()`. */
export class PartFile {
  readonly target: string;
  readonly part: string;
  readonly journal: string;
  readonly lock: string;
  readonly source: SourceIdentity;
  readonly #sha256: Uint8Array | undefined;
  readonly #replace: boolean;
  readonly #stale: boolean;
  readonly #journaled: boolean;
  #ranges: Range[];
  /** Bytes held when the transfer began (resumed, not sent again). */
  readonly resumed: number;
  /** Opened on the first write (or when finishing): thousands of small files never mean thousands of open handles. */
  #fh: Promise<FileHandle> | undefined;
  /** Holes of a fresh .part read as zeros: zero chunks need no write. */
  readonly #fresh: boolean;
  /** The `.part`'s inode once opened: it is renamed into place only if the path still names it (nobody replaced it). */
  #ino: { dev: number; ino: number } | undefined;
  #unsaved = 0;
  /** Writes in flight: the handle is closed only after them (a closed fd number could be reused by another file). */
  #inflight = 0;
  #drained: (() => void) | undefined;
  #savedAt = performance.now();
  /** Zero chunks were skipped: the length must be set when finishing. */
  #sparse = false;
  #saving: Promise<void> = Promise.resolve();
  #state: "open" | "finishing" | "finished" | "closed" = "open";
  #finished: Promise<void> | undefined;

  private constructor(options: PartFileOptions, ranges: Range[], fresh: boolean) {
    this.target = options.target;
    const base = join(dirname(options.target), tempBase(basename(options.target)));
    this.#journaled = journaled(options);
    // A small file is never resumed: its .part carries this process's pid, so no other process can
    // share it and no lock file is needed (two system calls a file less, for folders of small files).
    this.part = this.#journaled ? base + PART_SUFFIX : `${base}.${process.pid}${PART_SUFFIX}`;
    this.journal = base + JOURNAL_SUFFIX;
    this.lock = base + LOCK_SUFFIX;
    this.source = options.source;
    this.#sha256 = options.sha256;
    this.#replace = options.replace ?? true;
    this.#stale = options.stale === true;
    this.#ranges = ranges;
    this.#fresh = fresh;
    this.resumed = ranges.reduce((n, [s, e]) => n + e - s, 0);
  }

  /**
   * Opens (or joins, with the same `share`) the `.part` of `target`: takes the
   * lock, reads the journal, and resumes its ranges if it names the same
   * source, else starts a fresh `.part`.
   * @throws FileBusyError (SWARMNET_FILE_BUSY) when another transfer holds the target.
   * @throws FileAccessError (SWARMNET_FILE_ACCESS) when the folder cannot be written.
   */
  static async acquire(options: PartFileOptions): Promise<PartFile> {
    for (let mine = held.get(options.target); mine !== undefined; mine = held.get(options.target)) {
      if (mine.releasing !== undefined) {
        // A transfer of this target is letting go (cancelled, or done): wait for it, then look again.
        await mine.releasing;
        continue;
      }
      if (mine.share === undefined || mine.share !== options.share) {
        throw new FileBusyError(`${JSON.stringify(options.target)} is being written by another transfer`);
      }
      mine.refs++;
      const part = await mine.ready.catch((err: unknown) => {
        mine!.refs--;
        throw err;
      });
      if (part.source.size !== options.source.size || part.source.mtimeMs !== options.source.mtimeMs || part.#state !== "open") {
        await part.release();
        throw new FileBusyError(`${JSON.stringify(options.target)} is being written by another transfer of another source`);
      }
      return part;
    }
    const base = join(dirname(options.target), tempBase(basename(options.target)));
    // A name that is another transfer's temp file (or whose temp file is another transfer's
    // target): renaming one into place would replace the other's bytes under its final name.
    const other = temps.get(options.target);
    if (other !== undefined) {
      throw new FileBusyError(
        `${JSON.stringify(options.target)} is the temp file of ${JSON.stringify(other)}, being transferred now: transfer it on its own`,
      );
    }
    const myTemps = tempPathsOf(options.target, journaled(options));
    const clash = myTemps.find((p) => held.has(p));
    if (clash !== undefined) {
      throw new FileBusyError(
        `${JSON.stringify(options.target)} needs ${JSON.stringify(clash)} as its temp file, and that is being transferred now: transfer it on its own`,
      );
    }
    // Reserved before the first await: a second acquire in this process sees it at once.
    const ready = (async () => {
      // Only a file that can be resumed has a name shared across processes, and so a lock.
      if (journaled(options)) await takeLock(base + LOCK_SUFFIX, options.target);
      try {
        const ranges = journaled(options) ? await readJournal(base, options.source) : [];
        return new PartFile(options, ranges, ranges.length === 0);
      } catch (err) {
        await unlink(base + LOCK_SUFFIX).catch(() => undefined);
        throw localFileError(err, JSON.stringify(options.target));
      }
    })();
    const slot: Slot = { share: options.share, ready, part: undefined, refs: 1, releasing: undefined };
    held.set(options.target, slot);
    for (const p of myTemps) temps.set(p, options.target);
    try {
      slot.part = await ready;
      return slot.part;
    } catch (err) {
      forget(options.target, slot);
      throw err;
    }
  }

  /** Bytes of the file written so far. */
  get held(): number {
    return this.#ranges.reduce((n, [s, e]) => n + e - s, 0);
  }

  /** Not finishing, finished nor released: bytes may still be written, and one caller may `finish()` it. */
  get writable(): boolean {
    return this.#state === "open";
  }

  /** In place under its final name. */
  get finished(): boolean {
    return this.#state === "finished";
  }

  /** Every byte of the source is written. */
  get complete(): boolean {
    const first = this.#ranges[0];
    return this.source.size === 0 || (this.#ranges.length === 1 && first !== undefined && first[0] === 0 && first[1] === this.source.size);
  }

  /** The ranges of `[start, end)` not written yet. */
  missing(start = 0, end = this.source.size): Range[] {
    const out: Range[] = [];
    let pos = start;
    for (const [s, e] of this.#ranges) {
      if (e <= pos) continue;
      if (s >= end) break;
      if (s > pos) out.push([pos, Math.min(s, end)]);
      pos = Math.max(pos, e);
      if (pos >= end) break;
    }
    if (pos < end) out.push([pos, end]);
    return out;
  }

  /** Writes `buf` at `pos`; the range is recorded only once the write returned. */
  async write(pos: number, buf: Uint8Array): Promise<void> {
    this.#inflight++;
    try {
      await this.#write(pos, buf);
    } finally {
      if (--this.#inflight === 0 && this.#drained !== undefined) {
        const wake = this.#drained;
        this.#drained = undefined;
        wake();
      }
    }
  }

  /** The `.part`'s handle: a fresh one starts empty, a resumed one keeps its bytes; never through a symlink. */
  #handle(): Promise<FileHandle> {
    if (this.#fh === undefined) {
      this.#fh = open(this.part, this.#fresh ? WRITE_FRESH : WRITE_INTO).then(
        async (fh) => {
          const { dev, ino } = await fh.stat().catch(async (err: unknown) => {
            await fh.close().catch(() => undefined);
            throw err;
          });
          this.#ino = { dev, ino };
          return fh;
        },
        (err: unknown) => {
          if (errnoOf(err) === "ELOOP") throw new PathNotAllowedError(`${JSON.stringify(this.part)} is a symlink: refused`);
          throw localFileError(err, JSON.stringify(this.part));
        },
      );
      this.#fh.catch(() => undefined);
    }
    return this.#fh;
  }

  async #write(pos: number, buf: Uint8Array): Promise<void> {
    if (this.#state !== "open") throw new FileAccessError(`${JSON.stringify(this.target)}: the transfer was stopped`);
    const fh = await this.#handle();
    if (this.#fresh && isZero(buf)) {
      this.#sparse = true;
    } else {
      let off = 0;
      while (off < buf.length) {
        const { bytesWritten } = await fh.write(buf, off, buf.length - off, pos + off);
        off += bytesWritten;
      }
    }
    this.#record(pos, pos + buf.length);
    this.#unsaved += buf.length;
    if (this.#journaled && (this.#unsaved >= JOURNAL_EVERY_BYTES || performance.now() - this.#savedAt >= JOURNAL_EVERY_MS)) this.#save();
  }

  /**
   * Once every byte is written: size, SHA-256 (if known), rename into place,
   * journal and lock gone. Called by whoever wrote the last range; later calls
   * get the same promise.
   * @throws FileIntegrityError (SWARMNET_FILE_INTEGRITY) on a size or digest mismatch (the `.part` is removed).
   * @throws FileExistsError (SWARMNET_FILE_EXISTS) when the target appeared meanwhile and may not be replaced.
   */
  finish(): Promise<void> {
    this.#finished ??= this.#finish();
    return this.#finished;
  }

  async #finish(): Promise<void> {
    if (this.#state !== "open") throw new FileAccessError(`${JSON.stringify(this.target)}: the transfer was stopped`);
    if (!this.complete) throw new FileIntegrityError(`${JSON.stringify(this.target)}: finished before every byte arrived`);
    this.#state = "finishing";
    try {
      const fh = await this.#handle();
      this.#fh = undefined;
      try {
        // A fresh .part written in full has exactly the source's size; skipped zero chunks
        // (holes) or a resumed one need the length set and checked.
        if (this.#sparse || !this.#fresh || this.source.size === 0) {
          await fh.truncate(this.source.size);
          const { size } = await fh.stat();
          if (size !== this.source.size)
            throw new FileIntegrityError(`${JSON.stringify(this.target)} is ${size} bytes, ${this.source.size} expected`);
        }
      } finally {
        await fh.close().catch(() => undefined);
      }
      await this.#stillOurs();
      if (this.#sha256 !== undefined) {
        const actual = await sha256Prefix(this.part, this.source.size);
        if (Buffer.compare(actual, this.#sha256) !== 0) {
          await unlink(this.part).catch(() => undefined);
          throw new FileIntegrityError(`${JSON.stringify(this.target)}: SHA-256 does not match the source; the partial file was removed`);
        }
      }
      if (this.#sha256 !== undefined) await this.#stillOurs();
      if (this.#replace) {
        await rename(this.part, this.target);
      } else {
        // link() refuses an existing target where rename() would replace it.
        try {
          await link(this.part, this.target);
        } catch (err) {
          if (errnoOf(err) === "EEXIST")
            throw new FileExistsError(`${JSON.stringify(this.target)} appeared during the transfer: not replaced`);
          throw err;
        }
        await unlink(this.part);
      }
      this.#state = "finished";
      if (this.#stale && !this.#journaled) {
        const base = this.journal.slice(0, -JOURNAL_SUFFIX.length);
        await unlink(base + PART_SUFFIX).catch(() => undefined);
        await unlink(this.journal).catch(() => undefined);
      }
    } catch (err) {
      this.#state = "closed";
      // Never left to be taken for a prefix of this source: the next transfer starts clean
      // (unless the path names another writer's file now: that one is not ours to remove).
      if (!(err instanceof FileBusyError)) await unlink(this.part).catch(() => undefined);
      throw localFileError(err, JSON.stringify(this.target));
    } finally {
      await this.#saving;
      if (this.#journaled || !this.#fresh) await unlink(this.journal).catch(() => undefined);
      await this.#unlock();
    }
  }

  /**
   * Throws FileBusyError when the `.part` path no longer names the file this
   * transfer wrote (another process, or a user, replaced it): renaming it
   * would put someone else's bytes under the target's name.
   */
  async #stillOurs(): Promise<void> {
    const now = await lstat(this.part).catch(() => undefined);
    if (this.#ino === undefined || now === undefined || now.ino !== this.#ino.ino || now.dev !== this.#ino.dev) {
      throw new FileBusyError(
        `${JSON.stringify(this.part)} was replaced or removed by another writer during the transfer: ${JSON.stringify(this.target)} not renamed into place`,
      );
    }
  }

  /**
   * One holder is done with it. When the last one lets go of an unfinished
   * file, its journal is saved (large files: a rerun resumes the missing
   * ranges) or its `.part` removed (small files), and the lock released.
   */
  release(): Promise<void> {
    const slot = held.get(this.target);
    if (slot?.part === this) {
      if (slot.releasing !== undefined) return slot.releasing;
      if (--slot.refs > 0) return Promise.resolve();
      // Marked at once: a new transfer of this target waits for it instead of being refused.
      slot.releasing = this.#close();
      return slot.releasing;
    }
    return this.#close();
  }

  async #close(): Promise<void> {
    if (this.#state === "finishing") await this.#finished?.catch(() => undefined);
    if (this.#state !== "open") return;
    this.#state = "closed";
    if (this.#inflight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.then((h) => h.close()).catch(() => undefined);
    if (this.#journaled && this.#ranges.length > 0) {
      this.#save();
      await this.#saving;
    } else {
      await unlink(this.part).catch(() => undefined);
      await unlink(this.journal).catch(() => undefined);
    }
    await this.#unlock();
  }

  async #unlock(): Promise<void> {
    // The lock goes first: a transfer waiting in this process must not find it and take it for stale.
    if (this.#journaled) await unlink(this.lock).catch(() => undefined);
    const slot = held.get(this.target);
    if (slot?.part === this) forget(this.target, slot);
  }

  #record(start: number, end: number): void {
    const r = this.#ranges;
    let i = 0;
    while (i < r.length && r[i]![1] < start) i++;
    let s = start;
    let e = end;
    let j = i;
    while (j < r.length && r[j]![0] <= e) {
      s = Math.min(s, r[j]![0]);
      e = Math.max(e, r[j]![1]);
      j++;
    }
    r.splice(i, j - i, [s, e]);
  }

  /** Writes the journal beside it and renames it into place: a reader (or a rerun after SIGKILL) sees the old one or the new one, whole. */
  #save(): void {
    this.#unsaved = 0;
    this.#savedAt = performance.now();
    const text = JSON.stringify({
      v: 1,
      size: this.source.size,
      mtimeMs: this.source.mtimeMs,
      ...(this.#ino ? { ino: this.#ino.ino } : {}),
      ranges: this.#ranges,
    });
    const next = this.journal.slice(0, -JOURNAL_SUFFIX.length) + JOURNAL_NEXT_SUFFIX;
    this.#saving = this.#saving
      .then(async () => {
        const fh = await open(next, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW);
        try {
          await fh.write(text, 0, "utf8");
        } finally {
          await fh.close();
        }
        await rename(next, this.journal);
      })
      .catch(() => undefined);
  }
}

/** The ranges a journal records for this source, clipped to the `.part` on disk; [] if none apply. */
async function readJournal(base: string, source: SourceIdentity): Promise<Range[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(base + JOURNAL_SUFFIX, "utf8"));
  } catch {
    return [];
  }
  const j = parsed as { v?: unknown; size?: unknown; mtimeMs?: unknown; ino?: unknown; ranges?: unknown };
  if (j.v !== 1 || j.size !== source.size || j.mtimeMs !== source.mtimeMs || !Array.isArray(j.ranges)) return [];
  const part = await lstat(base + PART_SUFFIX).catch(() => undefined);
  if (!part?.isFile()) return [];
  // The journal describes the .part it was written beside: one replaced since (same name, another file) starts over.
  if (j.ino !== undefined && j.ino !== part.ino) return [];
  const out: Range[] = [];
  let last = 0;
  for (const r of j.ranges as unknown[]) {
    if (!Array.isArray(r) || !Number.isSafeInteger(r[0]) || !Number.isSafeInteger(r[1])) return [];
    const [s, e] = r as [number, number];
    if (s < last || e <= s || e > source.size) return [];
    // A range past the .part's end was never really written (the journal is ahead of a truncated file).
    if (e > part.size) break;
    out.push([s, e]);
    last = e;
  }
  return out;
}

/** SHA-256 of the first `size` bytes of `path` (exactly the bytes a transfer covers); `check` runs before each chunk (it may throw to stop). */
export async function sha256Prefix(path: string, size: number, fh?: FileHandle, check?: () => void): Promise<Uint8Array> {
  const handle = fh ?? (await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK));
  try {
    const hash = createHash("sha256");
    const buf = Buffer.allocUnsafe(Math.min(1024 * 1024, Math.max(1, size)));
    let pos = 0;
    while (pos < size) {
      check?.();
      const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return hash.digest();
  } finally {
    if (fh === undefined) await handle.close();
  }
}
