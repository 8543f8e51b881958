/**
 * File transfer on the client side: plans a download or an upload, runs it
 * over one client (one `file.get` / `file.put` request for the whole set, so
 * no round trip per file) or spreads it over a swarm with p-queue, largest
 * files first, splitting a file above `splitBytes` into byte ranges carried
 * by several clients and written into one `.part` by position.
 *
 * Every received file goes through a `PartFile` (actors/part-file.ts): its
 * `.part`, its journal of written ranges (resume only what is missing, never
 * a `.part` of another version of the source) and its lock (concurrent
 * transfers to one target never share a `.part`). Every path ends either in
 * place, byte-identical, or in the report's `notDelivered` with a reason:
 * when some are missing the call rejects with FilesNotDeliveredError, which
 * carries the report; `onReport` gets it in every case.
 *
 * Where things land: a folder download writes `<downloadDir>/<path relative
 * to the folder>` (empty folders too); a `files` download writes
 * `<downloadDir>/<base name>`; an upload writes `downloadDir/dirname/<base
 * name>` on the gateway.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, open, readdir, stat } from "node:fs/promises";
import { basename, join, resolve as resolvePath } from "node:path";
import PQueue from "p-queue";
import type { DataMessage, DataSink } from "../actors/client.js";
import { ensureDirInside, fileError } from "../actors/file-sandbox.js";
import { FileReceiver, FileSender, type ReceiveItem, type SendItem } from "../actors/file-transfer.js";
import {
  DEFAULT_IF_EXISTS,
  IF_EXISTS_VALUES,
  PART_SUFFIX,
  PartFile,
  chooseTarget,
  localFileError,
  sha256Prefix,
  tempBase,
  type IfExists,
} from "../actors/part-file.js";
import {
  AbortedError,
  DEFAULT_FILE_CHUNK_BYTES,
  DEFAULT_FILE_SPLIT_BYTES,
  DEFAULT_FILE_WINDOW_BYTES,
  DEFAULT_FILE_WINDOW_FILES,
  ErrorCode,
  FileAccessError,
  FileBusyError,
  FilesNotDeliveredError,
  InvalidArgumentError,
  MAX_FILE_CHUNK_BYTES,
  MAX_FILES_PER_REQUEST,
  PathNotAllowedError,
  ProtocolError,
  SwarmnetError,
  TimeoutError,
  checkName,
  checkRelativePath,
  errorFromWire,
  localNameProblem,
  normalizeRequestPath,
  type FileListingMessage,
  type NotDelivered,
  type TransferReport,
  clearLongTimeout,
  setLongTimeout,
  type LongTimeout,
  describeThrown,
} from "../protocol/index.js";
import { ProgressBar } from "./progress-bar.js";

export type { IfExists };

/** One progress event: about `file`, and the whole call so far. */
export interface FileProgress {
  /** Local path (downloads) or local source path (uploads) of the file this event is about. */
  readonly file: string;
  /** Bytes of this file in place (including what a resumed .part already held). */
  readonly fileBytes: number;
  readonly fileSize: number;
  /** This file is complete (renamed into place, for downloads). */
  readonly fileDone: boolean;
  /** Bytes of all files in place, and their total size. */
  readonly totalBytes: number;
  readonly totalSize: number;
  /** Bytes that crossed the wire in this call (less than totalBytes when a transfer resumed). */
  readonly transferred: number;
  readonly filesDone: number;
  readonly filesTotal: number;
}

interface TransferOptions {
  /** With `true`, each file is checked against the sender's SHA-256 of exactly the bytes listed before it is renamed. @default false */
  verify?: boolean;
  /** Called for every chunk written (downloads) or sent (uploads), and when a file completes. */
  onProgress?: (progress: FileProgress) => void;
  /**
   * Called once when the transfer ends (also when it rejects): delivered
   * paths, skipped ones, paths not delivered with reasons, bytes sent and
   * bytes resumed from earlier `.part` files.
   */
  onReport?: (report: TransferReport) => void;
  /**
   * A target that already exists: `"overwrite"` replaces it (once the new copy
   * is complete and checked), `"skip"` leaves it (listed in `report.skipped`),
   * `"rename"` lands the new copy as `NAME (1).ext`, `"error"` reports the path
   * as not delivered (SWARMNET_FILE_EXISTS). @default "overwrite"
   */
  ifExists?: IfExists;
  /** Progress bars on stderr when it is a TTY. @default the controller's `verbose` */
  verbose?: boolean;
  /** Cancels the transfer at any step (listing, verify hashing, sending): the call rejects with AbortedError; `.part` files and journals stay for a resume. */
  signal?: AbortSignal;
  /** Longest silence from the gateway during a transfer, in ms. @default the controller's timeoutMs */
  timeoutMs?: number;
  /** Bytes per chunk. @default 1 MiB */
  chunkBytes?: number;
  /** Bytes the sender may run ahead of what is written. @default 16 MiB */
  windowBytes?: number;
  /** Ranges the sender may have started and not yet completed. @default 128 */
  windowFiles?: number;
  /** Swarm only: a file larger than this is split into byte ranges over several clients. @default 32 MiB */
  splitBytes?: number;
}

/** `getFilesFromGateway`: a folder (optionally filtered) or a list of files. */
export interface GetFilesOptions extends TransferOptions {
  /**
   * A folder under one of the gateway's file roots; every file below it
   * (recursive), empty folders recreated. `"."` is the root itself; `logs/`
   * and `./logs` mean `logs`; an absolute path is served when it lies inside a
   * file root (`"/srv/pi/logs"`).
   */
  folder?: string;
  /**
   * Keeps the files whose path relative to `folder` matches, with `/` separators
   * (`"sub/app.log"`, not `"app.log"` nor an absolute path). It runs on the
   * gateway in a worker thread with a deadline: a pathological pattern is
   * refused with InvalidArgumentError, it never stalls the gateway.
   */
  regex?: string | RegExp;
  /** Paths relative to a file root (or absolute inside one); each lands in the download folder under its base name. */
  files?: readonly string[];
  /** Where the files land, for this call. @default the controller's `downloadDir` */
  downloadDir?: string;
}

/** `sendFilesToGateway`: local files into `downloadDir/dirname` on the gateway (under their base names). */
export interface SendFilesOptions extends TransferOptions {
  dirname: string;
  files: readonly string[];
}

/** What the client transport offers a transfer; implemented by `Client`. */
export interface TransferChannel {
  /** The gateway this channel talks to: a swarm's transfer uses only the clients of the gateway that listed the files. */
  readonly endpoint: string;
  readonly downloadDir: string;
  readonly verbose: boolean;
  readonly timeoutMs: number;
  list(message: Record<string, unknown>, timeoutMs: number): Promise<FileListingMessage>;
  /** Sends `message` (its id added) with `sink` receiving the replies; settles when the sink says so. */
  run(message: Record<string, unknown>, sink: (id: number, control: SinkControl) => TransferSink, timeoutMs: number): Promise<void>;
}

export interface SinkControl {
  send(message: Record<string, unknown>, raw?: Uint8Array): void;
  finished(id: number): void;
  failed(id: number, error: SwarmnetError): void;
}

export interface TransferSink extends DataSink {
  /** The request is going on the wire now. */
  start(): void;
  /** The call failed from outside (gateway error, client closed): stop, close, rename nothing. */
  stop(error: unknown): void;
}

interface Tuning {
  chunkBytes: number;
  windowBytes: number;
  windowFiles: number;
  timeoutMs: number;
  splitBytes: number;
  ifExists: IfExists;
}

function positiveInt(name: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer in 1..${max}, got ${String(value)}`);
  }
  return value;
}

function tuning(channel: TransferChannel, options: TransferOptions): Tuning {
  if (typeof options !== "object" || options === null) throw new InvalidArgumentError("file transfer options must be an object");
  const ifExists = options.ifExists ?? DEFAULT_IF_EXISTS;
  if (!IF_EXISTS_VALUES.includes(ifExists)) {
    throw new InvalidArgumentError(
      `ifExists must be one of ${IF_EXISTS_VALUES.map((v) => JSON.stringify(v)).join(", ")}, got ${JSON.stringify(ifExists)}`,
    );
  }
  return {
    chunkBytes: positiveInt("chunkBytes", options.chunkBytes, DEFAULT_FILE_CHUNK_BYTES, MAX_FILE_CHUNK_BYTES),
    windowBytes: positiveInt("windowBytes", options.windowBytes, DEFAULT_FILE_WINDOW_BYTES),
    windowFiles: positiveInt("windowFiles", options.windowFiles, DEFAULT_FILE_WINDOW_FILES),
    timeoutMs: positiveInt("timeoutMs", options.timeoutMs, channel.timeoutMs),
    splitBytes: positiveInt("splitBytes", options.splitBytes, DEFAULT_FILE_SPLIT_BYTES),
    ifExists,
  };
}

/** Collects what a transfer did, for `onReport` and FilesNotDeliveredError. */
class Report {
  readonly delivered: string[] = [];
  readonly skipped: string[] = [];
  readonly notDelivered: NotDelivered[] = [];
  readonly folders: string[] = [];
  bytesSent = 0;
  bytesResumed = 0;

  fail(path: string, error: unknown): void {
    const e = error instanceof SwarmnetError ? error : localFileError(error, JSON.stringify(path));
    this.notDelivered.push({ path, code: e.code, reason: e.message });
  }

  snapshot(): TransferReport {
    return {
      delivered: [...this.delivered],
      skipped: [...this.skipped],
      notDelivered: [...this.notDelivered],
      folders: [...this.folders],
      bytesSent: this.bytesSent,
      bytesResumed: this.bytesResumed,
    };
  }
}

// ---- progress -----------------------------------------------------------------------

class ProgressTracker {
  readonly #onProgress: ((p: FileProgress) => void) | undefined;
  readonly #bar: ProgressBar | undefined;
  readonly #bytes = new Map<string, number>();
  #totalBytes = 0;
  #transferred = 0;
  #filesDone = 0;
  readonly totalSize: number;
  readonly filesTotal: number;

  constructor(
    files: ReadonlyArray<{ local: string; size: number; have: number }>,
    options: TransferOptions,
    label: string,
    verbose: boolean,
  ) {
    this.#onProgress = options.onProgress;
    this.#bar = ProgressBar.forTransfer(label, options.verbose ?? verbose);
    this.totalSize = files.reduce((n, f) => n + f.size, 0);
    this.filesTotal = files.length;
    for (const f of files) {
      this.#bytes.set(f.local, f.have);
      this.#totalBytes += f.have;
    }
  }

  get active(): boolean {
    return this.#onProgress !== undefined || this.#bar !== undefined;
  }

  /** `delta` more bytes of `file` crossed the wire; `fileBytes` of it are now in place. */
  add(file: string, size: number, delta: number, done: boolean): void {
    this.#transferred += delta;
    this.#totalBytes += delta;
    const fileBytes = (this.#bytes.get(file) ?? 0) + delta;
    this.#bytes.set(file, fileBytes);
    if (done) this.#filesDone++;
    if (!this.active) return;
    const p: FileProgress = {
      file,
      fileBytes,
      fileSize: size,
      fileDone: done,
      totalBytes: this.#totalBytes,
      totalSize: this.totalSize,
      transferred: this.#transferred,
      filesDone: this.#filesDone,
      filesTotal: this.filesTotal,
    };
    this.#bar?.update(p);
    this.#onProgress?.(p);
  }

  /** `bytes` of `file` were already in place (resumed on the other end); they did not cross the wire. */
  resumed(file: string, bytes: number): void {
    this.#totalBytes += bytes;
    this.#bytes.set(file, (this.#bytes.get(file) ?? 0) + bytes);
  }

  finish(): void {
    this.#bar?.finish();
  }
}

// ---- sinks ------------------------------------------------------------------------

/**
 * Inactivity deadline: fires when nothing arrived from the gateway for `ms`.
 * `touch()` runs once per chunk, so it only records the time; one timer
 * checks it a few times per deadline instead of being re-armed per chunk.
 */
class Silence {
  #timer: LongTimeout | undefined;
  #last = 0;
  readonly #ms: number;
  readonly #onTimeout: () => void;
  constructor(ms: number, onTimeout: () => void) {
    this.#ms = ms;
    this.#onTimeout = onTimeout;
  }
  touch(): void {
    this.#last = performance.now();
    if (this.#timer !== undefined) return;
    const check = (): void => {
      const idle = performance.now() - this.#last;
      if (idle >= this.#ms) {
        this.#timer = undefined;
        this.#onTimeout();
      } else {
        this.#timer = setLongTimeout(check, Math.max(1, Math.min(this.#ms - idle, this.#ms / 4)));
      }
    };
    // Long timers: a timeoutMs of 2^31 ms or more must not fire at once.
    this.#timer = setLongTimeout(check, this.#ms);
  }
  stop(): void {
    clearLongTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Receives one `file.get`: chunks to the FileReceiver, credit back, done when every file is finished or failed. */
class DownloadSink implements TransferSink {
  readonly id: number;
  readonly #control: SinkControl;
  readonly #receiver: FileReceiver;
  readonly #silence: Silence;
  #gotDone = false;
  #complete = false;
  #over = false;

  constructor(
    id: number,
    control: SinkControl,
    receiver: (grant: (bytes: number, files: number) => void) => FileReceiver,
    timeoutMs: number,
  ) {
    this.id = id;
    this.#control = control;
    this.#receiver = receiver((bytes, files) => {
      if (!this.#over) control.send({ type: "file.credit", id, bytes, files });
    });
    this.#silence = new Silence(timeoutMs, () => {
      this.#abort(new TimeoutError(`file transfer ${id}: nothing from the gateway within ${timeoutMs} ms`));
    });
  }

  get receiver(): FileReceiver {
    return this.#receiver;
  }

  start(): void {
    this.#silence.touch();
    this.#receiver.start();
    this.#receiver.done.then(
      () => {
        this.#complete = true;
        this.#check();
      },
      (error: unknown) => this.#abort(error instanceof SwarmnetError ? error : fileError(error, "download")),
    );
  }

  onData(message: DataMessage, raw: Uint8Array | undefined): void {
    if (this.#over) return;
    if (message.type === "file.data") {
      this.#silence.touch();
      this.#receiver.onData(message.f, message.o, raw ?? new Uint8Array(0));
    } else if (message.type === "file.error") {
      this.#silence.touch();
      this.#receiver.onItemError(message.f, errorFromWire(message.code, message.message));
    } else if (message.type === "file.done") {
      this.#gotDone = true;
      // Everything was sent; what is left is local (writes, renames): no deadline on the gateway now.
      this.#silence.stop();
      this.#check();
    }
  }

  stop(error: unknown): void {
    this.#over = true;
    this.#silence.stop();
    this.#receiver.fail(error instanceof SwarmnetError ? error : new AbortedError(describeThrown(error).message));
  }

  /** A local failure or a deadline: tell the gateway to drop the job, fail the call. */
  #abort(error: SwarmnetError): void {
    if (this.#over) return;
    this.#over = true;
    this.#silence.stop();
    this.#receiver.fail(error);
    this.#control.send({ type: "rpc.cancel", id: this.id });
    this.#control.failed(this.id, error);
  }

  abort(error: SwarmnetError): void {
    this.#abort(error);
  }

  #check(): void {
    if (this.#over || !this.#gotDone || !this.#complete) return;
    this.#over = true;
    this.#control.finished(this.id);
  }
}

/** Drives one `file.put`: waits for `file.ready`, then sends the missing ranges under the gateway's credit until `file.done`. */
class UploadSink implements TransferSink {
  readonly id: number;
  readonly #control: SinkControl;
  readonly #entries: readonly UploadEntry[];
  readonly #chunkBytes: number;
  readonly #silence: Silence;
  readonly #events: UploadEvents;
  #sender: FileSender | undefined;
  #over = false;

  constructor(
    id: number,
    control: SinkControl,
    entries: readonly UploadEntry[],
    chunkBytes: number,
    timeoutMs: number,
    events: UploadEvents,
  ) {
    this.id = id;
    this.#control = control;
    this.#entries = entries;
    this.#chunkBytes = chunkBytes;
    this.#events = events;
    this.#silence = new Silence(timeoutMs, () =>
      this.abort(new TimeoutError(`file upload ${id}: nothing from the gateway within ${timeoutMs} ms`)),
    );
  }

  start(): void {
    this.#silence.touch();
  }

  onData(message: DataMessage): void {
    if (this.#over) return;
    this.#silence.touch();
    if (message.type === "file.ready") {
      if (this.#sender !== undefined || message.missing.length !== this.#entries.length) {
        this.abort(
          new ProtocolError(`file.ready does not match the upload (${message.missing.length} entries for ${this.#entries.length} files)`),
        );
        return;
      }
      for (const [index, code, text] of message.refused ?? []) {
        if (index < this.#entries.length) this.#events.refused(index, code, text);
      }
      for (const [index, name] of message.renamed ?? []) {
        if (index < this.#entries.length) this.#events.renamed(index, name);
      }
      const items: SendItem[] = [];
      message.missing.forEach((ranges, f) => {
        const e = this.#entries[f]!;
        let wanted = 0;
        for (const [s, end] of ranges) {
          // The gateway asks only inside the range offered; anything else is a protocol fault.
          if (s < e.offset || end > e.end) continue;
          items.push({ f, label: e.file.local, offset: s, end, expect: { size: e.file.size, mtimeMs: e.file.mtimeMs } });
          wanted += end - s;
        }
        if (!(message.refused ?? []).some(([i]) => i === f)) this.#events.resumed(f, e.end - e.offset - wanted);
      });
      const sent = items.map((it) => it.offset);
      this.#sender = new FileSender({
        id: this.id,
        items,
        open: (i) => open(items[i]!.label, constants.O_RDONLY | constants.O_NONBLOCK),
        chunkBytes: this.#chunkBytes,
        windowBytes: message.windowBytes,
        windowFiles: message.windowFiles,
        emit: (m, raw) => this.#control.send(m as unknown as Record<string, unknown>, raw),
        emitError: (f, error) => {
          this.#events.failed(f, error);
          this.#control.send({ type: "file.error", id: this.id, f, code: error.code, message: error.message });
        },
        onSent: (i, fileBytes) => {
          const delta = fileBytes - sent[i]!;
          sent[i] = fileBytes;
          this.#events.sent(items[i]!.f, delta);
        },
      });
      this.#sender.run().then(
        () => undefined,
        (error: unknown) => {
          if (!this.#over) this.abort(error instanceof SwarmnetError ? error : fileError(error, "upload"));
        },
      );
    } else if (message.type === "file.credit") {
      this.#sender?.credit(message.bytes, message.files);
    } else if (message.type === "file.error") {
      if (message.f < this.#entries.length) this.#events.failed(message.f, errorFromWire(message.code, message.message));
    } else if (message.type === "file.done") {
      this.#over = true;
      this.#silence.stop();
      this.#control.finished(this.id);
    }
  }

  stop(): void {
    this.#over = true;
    this.#silence.stop();
    this.#sender?.cancel();
  }

  abort(error: SwarmnetError): void {
    if (this.#over) return;
    this.#over = true;
    this.#silence.stop();
    this.#sender?.cancel();
    this.#control.send({ type: "rpc.cancel", id: this.id });
    this.#control.failed(this.id, error);
  }
}

// ---- shared -----------------------------------------------------------------------

async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A call's `signal`, for every step of it: an abort before a request is on the wire counts as much as one during it. */
interface AbortGate {
  /** Calls `listener` when the call is aborted (on a later turn, if it already was). */
  on(listener: (reason: SwarmnetError) => void): void;
  /** Throws the AbortedError if the call was aborted. */
  check(): void;
  /** Settles as `promise` does, or rejects as soon as the call is aborted. */
  race<T>(promise: Promise<T>): Promise<T>;
}

function withSignal<T>(signal: AbortSignal | undefined, run: (gate: AbortGate) => Promise<T>): Promise<T> {
  if (signal?.aborted) return Promise.reject(new AbortedError("transfer aborted", { cause: signal.reason }));
  const listeners: Array<(reason: SwarmnetError) => void> = [];
  let aborted: SwarmnetError | undefined;
  const onAbort = (): void => {
    aborted = new AbortedError("transfer aborted", { cause: signal?.reason });
    for (const l of listeners.splice(0)) l(aborted);
  };
  const gate: AbortGate = {
    on: (listener) => {
      const reason = aborted;
      if (reason !== undefined) queueMicrotask(() => listener(reason));
      else listeners.push(listener);
    },
    check: () => {
      if (aborted !== undefined) throw aborted;
    },
    race: (promise) => {
      promise.catch(() => undefined);
      return new Promise((resolve, reject) => {
        gate.on(reject);
        promise.then(resolve, reject);
      });
    },
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  return run(gate).finally(() => signal?.removeEventListener("abort", onAbort));
}

/** Packs units (largest first) into tasks: big ones alone, small ones together, so no round trip per file. */
function pack<T extends { bytes: number }>(units: readonly T[], clients: number): T[][] {
  const total = units.reduce((n, u) => n + u.bytes, 0);
  // About one batch per client: each batch is one request, and a request costs a round trip.
  const batchBytes = Math.max(1024 * 1024, Math.min(64 * 1024 * 1024, Math.ceil(total / clients)));
  // Never more files in one request than the gateway takes (MAX_FILES_PER_REQUEST).
  const batchUnits = Math.min(MAX_FILES_PER_REQUEST, Math.max(16, Math.ceil(units.length / clients)));
  const tasks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const u of units) {
    if (current.length > 0 && (bytes + u.bytes > batchBytes || current.length >= batchUnits)) {
      tasks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(u);
    bytes += u.bytes;
  }
  if (current.length > 0) tasks.push(current);
  return tasks;
}

/** Cuts `ranges` (total `bytes`) into about `count` pieces, each a whole number of chunks. */
function cut(ranges: ReadonlyArray<readonly [number, number]>, bytes: number, count: number, chunkBytes: number): Array<[number, number]> {
  const span = Math.max(chunkBytes, Math.ceil(bytes / count / chunkBytes) * chunkBytes);
  const out: Array<[number, number]> = [];
  for (const [s, e] of ranges) for (let p = s; p < e; p += span) out.push([p, Math.min(e, p + span)]);
  return out;
}

/** Runs `tasks` over the channels, one task per channel at a time; the first failure stops the rest and is thrown. */
async function spread<T>(
  channels: readonly TransferChannel[],
  tasks: readonly T[],
  run: (channel: TransferChannel, task: T) => Promise<void>,
): Promise<void> {
  const idle = [...channels];
  const queue = new PQueue({ concurrency: channels.length });
  let failure: { error: unknown } | undefined;
  for (const task of tasks) {
    void queue.add(async () => {
      if (failure) return;
      const channel = idle.pop()!;
      try {
        await run(channel, task);
      } catch (error) {
        if (!failure) failure = { error };
        queue.clear();
      } finally {
        idle.push(channel);
      }
    });
  }
  await queue.onIdle();
  if (failure) throw failure.error;
}

function regexOf(regex: string | RegExp | undefined): { source: string; flags: string } | undefined {
  if (regex === undefined) return undefined;
  if (regex instanceof RegExp) return { source: regex.source, flags: regex.flags };
  if (typeof regex !== "string") throw new InvalidArgumentError("regex must be a string or a RegExp");
  try {
    new RegExp(regex);
  } catch (err) {
    throw new InvalidArgumentError(`regex is not valid: ${(err as Error).message}`);
  }
  return { source: regex, flags: "" };
}

/** The download folder, made if missing and checked writable: FileAccessError naming it and the cause otherwise. */
async function prepareRoot(root: string): Promise<void> {
  await ensureDirInside(root, []);
  try {
    await access(root, constants.W_OK);
  } catch (err) {
    throw localFileError(err, `download folder ${JSON.stringify(root)} is not writable`);
  }
}

// ---- downloads ----------------------------------------------------------------------

interface PlannedFile {
  /** As the gateway knows it: relative to the folder, or as given. */
  readonly remote: string;
  readonly local: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly part: PartFile;
}

/** One entry of a `file.get`: a byte range of a file; `strict` asks the gateway to check the file is still the one listed. */
interface DownloadEntry {
  readonly file: PlannedFile;
  readonly offset: number;
  readonly end: number;
  readonly strict: boolean;
}

async function planDownload(
  listing: FileListingMessage,
  byFolder: boolean,
  root: string,
  tune: Tuning,
  verify: boolean,
  report: Report,
): Promise<PlannedFile[]> {
  const dirs = new Map<string, Promise<string>>();
  const listed = new Map<string, Promise<Set<string>>>();
  /** The names in `dir`, read once per folder (most targets do not exist yet). */
  const namesIn = (dir: string): Promise<Set<string>> => {
    let names = listed.get(dir);
    if (names === undefined) {
      names = readdir(dir).then((n) => new Set(n));
      listed.set(dir, names);
    }
    return names;
  };
  const dirOf = (segments: readonly string[]): Promise<string> => {
    const key = segments.join("/");
    let dir = dirs.get(key);
    if (dir === undefined) {
      dir = ensureDirInside(root, segments);
      dir.catch(() => undefined);
      dirs.set(key, dir);
    }
    return dir;
  };
  const seen = new Set<string>();
  const slots: Array<PlannedFile | undefined> = new Array<PlannedFile | undefined>(listing.files.length);
  const work: Array<{ i: number; remote: string; size: number; sha256: Uint8Array | undefined; segments: string[] }> = [];
  for (const [i, [remote, size, sha256]] of listing.files.entries()) {
    let segments: string[];
    try {
      // A gateway's listing is input too: it may not write outside the download folder.
      segments = byFolder ? checkRelativePath(remote, "listed path") : [basename(remote)];
      if (!byFolder) checkName(segments[0]!, "file name");
      for (const segment of segments) {
        const problem = localNameProblem(segment);
        if (problem !== undefined) throw new PathNotAllowedError(`${JSON.stringify(remote)}: ${problem}`);
      }
    } catch (err) {
      report.fail(remote, err);
      continue;
    }
    const rel = segments.join("/");
    if (seen.has(rel)) throw new InvalidArgumentError(`two files would land at ${JSON.stringify(rel)} in the download folder`);
    seen.add(rel);
    work.push({ i, remote, size, sha256, segments });
  }
  await forEachLimit(work, 16, async ({ i, remote, size, sha256, segments }) => {
    try {
      const dir = await dirOf(segments.slice(0, -1));
      const names = await namesIn(dir);
      let target: string | undefined;
      let part: PartFile | undefined;
      for (let attempt = 0; part === undefined; attempt++) {
        target = await chooseTarget(dir, segments[segments.length - 1]!, tune.ifExists, names);
        if (target === undefined) {
          report.skipped.push(join(dir, segments[segments.length - 1]!));
          return;
        }
        try {
          part = await PartFile.acquire({
            target,
            source: { size, mtimeMs: listing.mtimes?.[i] ?? -1 },
            sha256: verify ? sha256 : undefined,
            replace: tune.ifExists === "overwrite",
            stale: names.has(tempBase(basename(target)) + PART_SUFFIX),
          });
        } catch (err) {
          // "rename": another file of this transfer took that name meanwhile; the next free one will do.
          if (!(err instanceof FileBusyError && tune.ifExists === "rename" && attempt < 8)) throw err;
        }
      }
      if (target === undefined) return;
      slots[i] = { remote, local: target, size, mtimeMs: listing.mtimes?.[i] ?? -1, part };
    } catch (err) {
      report.fail(remote, err);
    }
  });
  for (const [path, code, reason] of listing.problems ?? []) report.notDelivered.push({ path, code, reason });
  for (const folder of listing.folders ?? []) {
    try {
      const segments = checkRelativePath(folder, "listed folder");
      for (const segment of segments) {
        const problem = localNameProblem(segment);
        if (problem !== undefined) throw new PathNotAllowedError(`${JSON.stringify(folder)}: ${problem}`);
      }
      report.folders.push(await dirOf(segments));
    } catch (err) {
      report.fail(folder, err);
    }
  }
  return slots.filter((p): p is PlannedFile => p !== undefined);
}

async function runDownloadTask(
  channel: TransferChannel,
  folder: string | undefined,
  entries: readonly DownloadEntry[],
  tune: Tuning,
  progress: ProgressTracker,
  gate: AbortGate,
  onFailure: (file: PlannedFile, error: SwarmnetError) => void,
  report: Report,
): Promise<void> {
  const items: ReceiveItem[] = entries.map(({ file, offset, end }) => ({
    label: file.remote,
    part: file.part,
    segments: end > offset ? [[offset, end]] : [],
  }));
  const message = {
    type: "file.get",
    ...(folder !== undefined ? { folder } : {}),
    files: entries.map(({ file, offset, end, strict }) =>
      strict ? [file.remote, offset, end, file.size, file.mtimeMs] : [file.remote, offset, end],
    ),
    chunkBytes: tune.chunkBytes,
    windowBytes: tune.windowBytes,
    windowFiles: tune.windowFiles,
  };
  let sink: DownloadSink | undefined;
  gate.check();
  await channel.run(
    message,
    (id, control) => {
      const made = new DownloadSink(
        id,
        control,
        (grant) =>
          new FileReceiver({
            items,
            windowBytes: tune.windowBytes,
            windowFiles: tune.windowFiles,
            grant,
            onProgress: (index, delta, done) => {
              const f = entries[index]!.file;
              report.bytesSent += delta;
              progress.add(f.local, f.size, delta, done);
            },
          }),
        tune.timeoutMs,
      );
      gate.on((reason) => made.abort(reason));
      sink = made;
      return made;
    },
    tune.timeoutMs,
  );
  const result = await sink!.receiver.done;
  for (const failure of result.failures) onFailure(entries[failure.index]!.file, failure.error);
}

/**
 * `getFilesFromGateway` over one client or a swarm: lists with the first
 * client, then fetches with the clients of that same gateway only.
 */
export async function download(channels: readonly TransferChannel[], options: GetFilesOptions): Promise<string[]> {
  const first = channels[0];
  if (!first) throw new InvalidArgumentError("a swarm needs at least one client");
  const tune = tuning(first, options);
  const { files } = options;
  if ((options.folder === undefined) === (files === undefined)) {
    throw new InvalidArgumentError("getFilesFromGateway needs exactly one of { folder } and { files }");
  }
  if (files !== undefined && (!Array.isArray(files) || !files.every((f) => typeof f === "string"))) {
    throw new InvalidArgumentError("getFilesFromGateway: files must be an array of paths");
  }
  if (files !== undefined && files.length > MAX_FILES_PER_REQUEST) {
    throw new InvalidArgumentError(
      `getFilesFromGateway: at most ${MAX_FILES_PER_REQUEST} files per call, got ${files.length}: split the list or download their folder`,
    );
  }
  if (files !== undefined && options.regex !== undefined)
    throw new InvalidArgumentError("getFilesFromGateway: regex applies to { folder } only");
  if (options.folder !== undefined && typeof options.folder !== "string")
    throw new InvalidArgumentError("getFilesFromGateway: folder must be a string");
  if (options.downloadDir !== undefined && (typeof options.downloadDir !== "string" || options.downloadDir.length === 0)) {
    throw new InvalidArgumentError("getFilesFromGateway: downloadDir must be a non-empty path");
  }
  // Early and local: the gateway checks again, and only its answer counts.
  const folder = options.folder !== undefined ? normalizeRequestPath(options.folder, "folder") : undefined;
  const wanted = files?.map((f) => normalizeRequestPath(f));
  const regex = regexOf(options.regex);
  const verify = options.verify === true;
  const report = new Report();
  const planned: PlannedFile[] = [];
  let progress: ProgressTracker | undefined;
  return withSignal(options.signal, async (gate) => {
    try {
      const listing = await gate.race(
        first.list(
          folder !== undefined
            ? { type: "file.list", folder, ...(regex ? { regex } : {}), ...(verify ? { hash: true } : {}) }
            : { type: "file.list", files: wanted, ...(verify ? { hash: true } : {}) },
          tune.timeoutMs,
        ),
      );
      const root = resolvePath(options.downloadDir ?? first.downloadDir);
      await prepareRoot(root);
      planned.push(...(await planDownload(listing, folder !== undefined, root, tune, verify, report)));
      gate.check();
      for (const f of planned) report.bytesResumed += f.part.resumed;
      progress = new ProgressTracker(
        planned.map((f) => ({ local: f.local, size: f.size, have: f.part.held })),
        options,
        "download",
        first.verbose,
      );
      // A swarm may span gateways: only the clients of the gateway that listed the files fetch them.
      const same = channels.filter((c) => c.endpoint === first.endpoint);
      const tasks = downloadTasks(planned, same.length, tune);
      const failed = new Set<PlannedFile>();
      const track = progress;
      await spread(same, tasks, (channel, entries) =>
        runDownloadTask(
          channel,
          folder,
          entries,
          tune,
          track,
          gate,
          (file, error) => {
            if (failed.has(file)) return;
            failed.add(file);
            report.fail(file.remote, error);
          },
          report,
        ),
      );
      for (const f of planned) {
        if (f.part.finished) report.delivered.push(f.local);
        else if (!failed.has(f)) report.fail(f.remote, new FileAccessError(`${JSON.stringify(f.remote)}: not every byte arrived`));
      }
    } finally {
      progress?.finish();
      // Unfinished files keep their .part and journal (large ones) for the next run.
      await Promise.all(planned.map((f) => f.part.release()));
      options.onReport?.(report.snapshot());
    }
    if (report.notDelivered.length > 0) throw new FilesNotDeliveredError(report.snapshot());
    return report.delivered;
  });
}

/** Whole files packed in batches, and (over several clients) large missing spans cut into ranges, largest first. */
function downloadTasks(planned: readonly PlannedFile[], clients: number, tune: Tuning): DownloadEntry[][] {
  const units: Array<{ entries: DownloadEntry[]; bytes: number }> = [];
  const split: DownloadEntry[][] = [];
  for (const file of planned) {
    const missing = file.part.missing();
    const bytes = missing.reduce((n, [s, e]) => n + e - s, 0);
    // Resumed bytes must come from the same version of the source: the gateway checks size and mtime.
    const resumed = file.part.resumed > 0;
    if (clients > 1 && bytes > tune.splitBytes) {
      const pieces = cut(missing, bytes, Math.min(clients, Math.ceil(bytes / tune.splitBytes)), tune.chunkBytes);
      for (const [s, e] of pieces) split.push([{ file, offset: s, end: e, strict: true }]);
    } else if (missing.length === 0) {
      units.push({ entries: [{ file, offset: file.size, end: file.size, strict: false }], bytes: 0 });
    } else {
      units.push({ entries: missing.map(([s, e]) => ({ file, offset: s, end: e, strict: resumed })), bytes });
    }
  }
  units.sort((a, b) => b.bytes - a.bytes);
  const tasks = [...split, ...pack(units, clients).map((group) => group.flatMap((u) => u.entries))];
  const size = (t: DownloadEntry[]): number => t.reduce((n, e) => n + e.end - e.offset, 0);
  return tasks.sort((a, b) => size(b) - size(a));
}

/** `client.getFilesFromGateway(...)`. */
export function getFiles(channel: TransferChannel, options: GetFilesOptions): Promise<string[]> {
  return download([channel], options);
}

/** `swarm.getFilesFromGateway(...)`. */
export function swarmGetFiles(channels: readonly TransferChannel[], options: GetFilesOptions): Promise<string[]> {
  return download(channels, options);
}

// ---- uploads ------------------------------------------------------------------------

interface UploadFile {
  readonly local: string;
  readonly name: string;
  readonly size: number;
  readonly mtimeMs: number;
  sha256?: Uint8Array;
}

interface UploadEntry {
  readonly file: UploadFile;
  readonly offset: number;
  readonly end: number;
}

interface UploadEvents {
  refused(index: number, code: string, message: string): void;
  /** The gateway lands file `index` under `name` (`ifExists: "rename"`). */
  renamed(index: number, name: string): void;
  failed(index: number, error: SwarmnetError): void;
  resumed(index: number, bytes: number): void;
  sent(index: number, delta: number): void;
}

async function planUpload(options: SendFilesOptions): Promise<UploadFile[]> {
  if (typeof options !== "object" || options === null || typeof options.dirname !== "string" || !Array.isArray(options.files)) {
    throw new InvalidArgumentError("sendFilesToGateway needs { dirname, files }");
  }
  const dirname = normalizeRequestPath(options.dirname, "dirname");
  if (dirname !== ".") checkRelativePath(dirname, "dirname");
  const seen = new Set<string>();
  const out: UploadFile[] = [];
  for (const local of options.files) {
    if (typeof local !== "string" || local.length === 0)
      throw new InvalidArgumentError("sendFilesToGateway: files must be non-empty paths");
    const name = basename(local);
    checkName(name, "file name");
    if (seen.has(name)) throw new InvalidArgumentError(`two files named ${JSON.stringify(name)} would land in the same folder`);
    seen.add(name);
    let st;
    try {
      st = await stat(local);
    } catch (err) {
      throw fileError(err, local);
    }
    if (!st.isFile()) throw new FileAccessError(`${JSON.stringify(local)} is not a regular file`);
    out.push({ local: resolvePath(local), name, size: st.size, mtimeMs: st.mtimeMs });
  }
  return out;
}

async function runUploadTask(
  channel: TransferChannel,
  dirname: string,
  group: string,
  entries: readonly UploadEntry[],
  tune: Tuning,
  gate: AbortGate,
  events: (entry: UploadEntry) => UploadEvents,
): Promise<void> {
  const digests = entries.map((e) => e.file.sha256);
  const message = {
    type: "file.put",
    dirname,
    files: entries.map((e) => [e.file.name, e.file.size, e.file.mtimeMs, e.offset, e.end]),
    ...(digests.every((d) => d !== undefined) && digests.length > 0 ? { sha256: digests } : {}),
    chunkBytes: tune.chunkBytes,
    ifExists: tune.ifExists,
    group,
  };
  const byIndex = entries.map(events);
  gate.check();
  await channel.run(
    message,
    (id, control) => {
      const sink = new UploadSink(id, control, entries, tune.chunkBytes, tune.timeoutMs, {
        refused: (i, code, text) => byIndex[i]!.refused(i, code, text),
        renamed: (i, name) => byIndex[i]!.renamed(i, name),
        failed: (i, error) => byIndex[i]!.failed(i, error),
        resumed: (i, bytes) => byIndex[i]!.resumed(i, bytes),
        sent: (i, delta) => byIndex[i]!.sent(i, delta),
      });
      gate.on((reason) => sink.abort(reason));
      return sink;
    },
    tune.timeoutMs,
  );
}

/**
 * The requests of an upload: whole files packed in batches (at most
 * MAX_FILES_PER_REQUEST each), and (over several clients) a file larger than
 * `splitBytes` cut into byte ranges, largest first.
 */
export function uploadTasks<F extends { readonly size: number }>(
  files: readonly F[],
  clients: number,
  tune: { splitBytes: number; chunkBytes: number },
): Array<Array<{ file: F; offset: number; end: number }>> {
  const units: Array<{ entries: Array<{ file: F; offset: number; end: number }>; bytes: number }> = [];
  const split: Array<Array<{ file: F; offset: number; end: number }>> = [];
  for (const file of [...files].sort((a, b) => b.size - a.size)) {
    if (clients > 1 && file.size > tune.splitBytes) {
      for (const [s, e] of cut([[0, file.size]], file.size, Math.min(clients, Math.ceil(file.size / tune.splitBytes)), tune.chunkBytes)) {
        split.push([{ file, offset: s, end: e }]);
      }
    } else {
      units.push({ entries: [{ file, offset: 0, end: file.size }], bytes: file.size });
    }
  }
  return [...split, ...pack(units, clients).map((g) => g.flatMap((u) => u.entries))];
}

/**
 * `sendFilesToGateway` over one client or a swarm: whole files spread over
 * the clients, largest first, and (over several clients) a file larger than
 * `splitBytes` cut into byte ranges that the gateway writes into one `.part`.
 */
export async function upload(channels: readonly TransferChannel[], options: SendFilesOptions): Promise<number> {
  const first = channels[0];
  if (!first) throw new InvalidArgumentError("a swarm needs at least one client");
  const tune = tuning(first, options);
  const report = new Report();
  return withSignal(options.signal, async (gate) => {
    const files = await planUpload(options);
    gate.check();
    if (files.length === 0) return 0;
    const dirname = normalizeRequestPath(options.dirname, "dirname");
    if (options.verify === true) {
      // A few at a time: each hash streams its file through a 1 MiB buffer.
      await forEachLimit(files, 4, async (f) => {
        gate.check();
        f.sha256 = await sha256Prefix(f.local, f.size, undefined, gate.check);
      });
      gate.check();
    }
    const progress = new ProgressTracker(
      files.map((f) => ({ local: f.local, size: f.size, have: 0 })),
      options,
      "upload",
      first.verbose,
    );
    const group = randomBytes(8).toString("hex");
    const state = new Map<UploadFile, { sent: number; landed?: string; fault?: { code: string; reason: string; skipped: boolean } }>(
      files.map((f) => [f, { sent: 0 }]),
    );
    const tasks = uploadTasks(files, channels.length, tune);
    try {
      await spread(channels, tasks, (channel, entries) =>
        runUploadTask(channel, dirname, group, entries, tune, gate, (entry) => {
          const st = state.get(entry.file)!;
          return {
            refused: (_i, code, text) => {
              st.fault ??= { code, reason: text, skipped: code === ErrorCode.FILE_EXISTS && tune.ifExists === "skip" };
            },
            renamed: (_i, name) => {
              // The gateway's own file-name rules: a name, never a path.
              if (!name.includes("/") && name !== "." && name !== "..") st.landed ??= name;
            },
            failed: (_i, error) => {
              st.fault ??= { code: error.code, reason: error.message, skipped: false };
            },
            resumed: (_i, bytes) => {
              report.bytesResumed += bytes;
              progress.resumed(entry.file.local, bytes);
            },
            sent: (_i, delta) => {
              st.sent += delta;
              report.bytesSent += delta;
              progress.add(entry.file.local, entry.file.size, delta, false);
            },
          };
        }),
      );
      for (const f of files) {
        const st = state.get(f)!;
        const name = st.landed ?? f.name;
        const remote = dirname === "." ? name : `${dirname}/${name}`;
        if (st.fault?.skipped) report.skipped.push(remote);
        else if (st.fault) report.notDelivered.push({ path: f.local, code: st.fault.code, reason: st.fault.reason });
        else report.delivered.push(remote);
      }
    } finally {
      progress.finish();
      options.onReport?.(report.snapshot());
    }
    if (report.notDelivered.length > 0) throw new FilesNotDeliveredError(report.snapshot());
    return report.delivered.length;
  });
}

/** `client.sendFilesToGateway(...)`. */
export function sendFiles(channel: TransferChannel, options: SendFilesOptions): Promise<number> {
  return upload([channel], options);
}

/** `swarm.sendFilesToGateway(...)`. */
export function swarmSendFiles(channels: readonly TransferChannel[], options: SendFilesOptions): Promise<number> {
  return upload(channels, options);
}
