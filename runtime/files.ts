/**
 * File transfer on the client side: plans a download or an upload, runs it
 * over one client (one `file.get` / `file.put` request for the whole set, so
 * no round trip per file) or spreads it over a swarm with p-queue, largest
 * files first, splitting a file above `splitBytes` into byte ranges fetched
 * by several clients and written into one `NAME.part` by position.
 *
 * Where things land: a folder download writes `downloadDir/<path relative to
 * the folder>`; a `files` download writes `downloadDir/<base name>`; an upload
 * writes `downloadDir/dirname/<base name>` on the gateway.
 */
import { basename, join, resolve as resolvePath } from "node:path";
import { lstat, open, readdir, rename, stat, truncate } from "node:fs/promises";
import PQueue from "p-queue";
import type { DataMessage, DataSink } from "../actors/client.js";
import { PART_SUFFIX, ensureDirInside, fileError, sha256File } from "../actors/file-sandbox.js";
import { FileReceiver, FileSender, type ReceiveItem } from "../actors/file-transfer.js";
import {
  AbortedError,
  DEFAULT_FILE_CHUNK_BYTES,
  DEFAULT_FILE_SPLIT_BYTES,
  DEFAULT_FILE_WINDOW_BYTES,
  DEFAULT_FILE_WINDOW_FILES,
  FileIntegrityError,
  InvalidArgumentError,
  MAX_FILE_CHUNK_BYTES,
  ProtocolError,
  SwarmnetError,
  TimeoutError,
  checkName,
  checkRelativePath,
  clearLongTimeout,
  setLongTimeout,
  type LongTimeout,
  describeThrown,
} from "../protocol/index.js";
import { ProgressBar } from "./progress-bar.js";

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
  /** With `true`, a download is checked against the gateway's SHA-256 of each file (an upload: the gateway checks). @default false */
  verify?: boolean;
  /** Called for every chunk written (downloads) or sent (uploads), and when a file completes. */
  onProgress?: (progress: FileProgress) => void;
  /** Progress bars on stderr when it is a TTY. @default the controller's `verbose` */
  verbose?: boolean;
  /** Cancels the transfer: the call rejects with the signal's reason, nothing is renamed. */
  signal?: AbortSignal;
  /** Longest silence from the gateway during a transfer, in ms. @default the controller's timeoutMs */
  timeoutMs?: number;
  /** Bytes per chunk. @default 1 MiB */
  chunkBytes?: number;
  /** Bytes the sender may run ahead of what is written. @default 16 MiB */
  windowBytes?: number;
  /** Files the sender may have started and not yet completed. @default 128 */
  windowFiles?: number;
}

/** `getFilesFromGateway`: a folder (optionally filtered) or a list of files. */
export interface GetFilesOptions extends TransferOptions {
  /** A folder under one of the gateway's file roots; every file below it (recursive). `"."` is the root itself. */
  folder?: string;
  /**
   * Keeps the files whose path relative to `folder` matches, with `/` separators
   * (`"sub/app.log"`, not `"app.log"` nor an absolute path). It runs on the
   * gateway in a worker thread with a deadline: a pathological pattern is
   * refused with InvalidArgumentError, it never stalls the gateway.
   */
  regex?: string | RegExp;
  /** Paths relative to a file root; each lands in `downloadDir` under its base name. */
  files?: readonly string[];
  /** Swarm only: a file larger than this is split into byte ranges over several clients. @default 32 MiB */
  splitBytes?: number;
}

/** `sendFilesToGateway`: local files into `downloadDir/dirname` on the gateway (under their base names). */
export interface SendFilesOptions extends TransferOptions {
  dirname: string;
  files: readonly string[];
}

export type ListedEntry = readonly [path: string, size: number, sha256?: Uint8Array];

/** What the client transport offers a transfer; implemented by `Client`. */
export interface TransferChannel {
  readonly downloadDir: string;
  readonly verbose: boolean;
  readonly timeoutMs: number;
  list(message: Record<string, unknown>, timeoutMs: number): Promise<readonly ListedEntry[]>;
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
}

function positiveInt(name: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer in 1..${max}, got ${String(value)}`);
  }
  return value;
}

function tuning(channel: TransferChannel, options: TransferOptions): Tuning {
  return {
    chunkBytes: positiveInt("chunkBytes", options.chunkBytes, DEFAULT_FILE_CHUNK_BYTES, MAX_FILE_CHUNK_BYTES),
    windowBytes: positiveInt("windowBytes", options.windowBytes, DEFAULT_FILE_WINDOW_BYTES),
    windowFiles: positiveInt("windowFiles", options.windowFiles, DEFAULT_FILE_WINDOW_FILES),
    timeoutMs: positiveInt("timeoutMs", options.timeoutMs, channel.timeoutMs),
  };
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

  constructor(files: ReadonlyArray<{ local: string; size: number; have: number }>, options: TransferOptions, label: string, verbose: boolean) {
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

/** Receives one `file.get`: chunks to the FileReceiver, credit back, done when every file is complete. */
class DownloadSink implements TransferSink {
  readonly id: number;
  readonly #control: SinkControl;
  readonly #receiver: FileReceiver;
  readonly #silence: Silence;
  #gotDone = false;
  #complete = false;
  #over = false;

  constructor(id: number, control: SinkControl, receiver: (grant: (bytes: number, files: number) => void) => FileReceiver, timeoutMs: number) {
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

/** Drives one `file.put`: waits for `file.ready`, then sends under the gateway's credit until `file.done`. */
class UploadSink implements TransferSink {
  readonly id: number;
  readonly #control: SinkControl;
  readonly #files: ReadonlyArray<{ local: string; size: number }>;
  readonly #chunkBytes: number;
  readonly #silence: Silence;
  readonly #onSent: (index: number, delta: number, done: boolean) => void;
  #sender: FileSender | undefined;
  #over = false;

  constructor(id: number, control: SinkControl, files: ReadonlyArray<{ local: string; size: number }>, chunkBytes: number, timeoutMs: number, onSent: (index: number, delta: number, done: boolean) => void) {
    this.id = id;
    this.#control = control;
    this.#files = files;
    this.#chunkBytes = chunkBytes;
    this.#onSent = onSent;
    this.#silence = new Silence(timeoutMs, () => this.abort(new TimeoutError(`file upload ${id}: nothing from the gateway within ${timeoutMs} ms`)));
  }

  start(): void {
    this.#silence.touch();
  }

  onData(message: DataMessage): void {
    if (this.#over) return;
    this.#silence.touch();
    if (message.type === "file.ready") {
      if (this.#sender !== undefined || message.offsets.length !== this.#files.length) {
        this.abort(new ProtocolError(`file.ready does not match the upload (${message.offsets.length} offsets for ${this.#files.length} files)`));
        return;
      }
      const offsets = message.offsets;
      const sent = offsets.slice();
      offsets.forEach((o, i) => {
        const f = this.#files[i]!;
        if (o > f.size) return;
        if (o === f.size) this.#onSent(i, 0, true);
      });
      this.#sender = new FileSender({
        id: this.id,
        items: this.#files.map((f, i) => ({ label: f.local, offset: Math.min(offsets[i]!, f.size), end: f.size })),
        open: (i) => open(this.#files[i]!.local, "r"),
        chunkBytes: this.#chunkBytes,
        windowBytes: message.windowBytes,
        windowFiles: message.windowFiles,
        emit: (m, raw) => this.#control.send(m as unknown as Record<string, unknown>, raw),
        onSent: (i, fileBytes) => {
          const delta = fileBytes - sent[i]!;
          sent[i] = fileBytes;
          this.#onSent(i, delta, fileBytes === this.#files[i]!.size);
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

// ---- planning ---------------------------------------------------------------------

interface PlannedFile {
  /** As the gateway knows it: relative to the folder, or as given. */
  readonly remote: string;
  readonly local: string;
  readonly size: number;
  readonly sha256: Uint8Array | undefined;
  /** Bytes already in `local + .part` (resume). */
  have: number;
}

interface DownloadPlan {
  readonly folder: string | undefined;
  readonly files: PlannedFile[];
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

async function planDownload(channel: TransferChannel, options: GetFilesOptions, timeoutMs: number): Promise<DownloadPlan> {
  if (typeof options !== "object" || options === null) throw new InvalidArgumentError("getFilesFromGateway needs { folder } or { files }");
  const { folder, files } = options;
  if ((folder === undefined) === (files === undefined)) {
    throw new InvalidArgumentError("getFilesFromGateway needs exactly one of { folder } and { files }");
  }
  if (files !== undefined && (!Array.isArray(files) || !files.every((f) => typeof f === "string"))) {
    throw new InvalidArgumentError("getFilesFromGateway: files must be an array of paths");
  }
  if (files !== undefined && options.regex !== undefined) throw new InvalidArgumentError("getFilesFromGateway: regex applies to { folder } only");
  if (folder !== undefined && typeof folder !== "string") throw new InvalidArgumentError("getFilesFromGateway: folder must be a string");
  // Early and local: the gateway checks again, and only its answer counts.
  if (folder !== undefined && folder !== ".") checkRelativePath(folder, "folder");
  for (const f of files ?? []) checkRelativePath(f);
  const regex = regexOf(options.regex);
  const listing = await channel.list(
    folder !== undefined
      ? { type: "file.list", folder, ...(regex ? { regex } : {}), ...(options.verify ? { hash: true } : {}) }
      : { type: "file.list", files, ...(options.verify ? { hash: true } : {}) },
    timeoutMs,
  );
  const root = resolvePath(channel.downloadDir);
  const planned: PlannedFile[] = [];
  const seen = new Set<string>();
  const dirs = new Map<string, Promise<string>>();
  for (const [remote, size, sha256] of listing) {
    // A gateway's listing is input too: it may not write outside downloadDir.
    const segments = folder !== undefined ? checkRelativePath(remote, "listed path") : [basename(remote)];
    if (folder === undefined) checkName(segments[0]!, "file name");
    const rel = segments.join("/");
    if (seen.has(rel)) throw new InvalidArgumentError(`two files would land at ${JSON.stringify(rel)} in downloadDir`);
    seen.add(rel);
    const dirKey = segments.slice(0, -1).join("/");
    let dir = dirs.get(dirKey);
    if (dir === undefined) {
      dir = ensureDirInside(root, segments.slice(0, -1));
      dirs.set(dirKey, dir);
    }
    const local = join(await dir, segments[segments.length - 1]!);
    planned.push({ remote, local, size, sha256: options.verify ? sha256 : undefined, have: 0 });
  }
  // Resume: a .part no longer than the source is a prefix we already hold. One readdir
  // per folder finds the .part files, instead of one lstat per file (most have none).
  const parts = new Set<string>();
  for (const dir of new Set(await Promise.all(dirs.values()))) {
    for (const name of await readdir(dir)) if (name.endsWith(PART_SUFFIX)) parts.add(join(dir, name));
  }
  await forEachLimit(planned.filter((f) => parts.has(f.local + PART_SUFFIX)), 16, async (f) => {
    const part = await lstat(f.local + PART_SUFFIX).catch(() => undefined);
    f.have = part?.isFile() && part.size <= f.size ? part.size : 0;
  });
  return { folder, files: planned };
}

async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function withSignal<T>(signal: AbortSignal | undefined, run: (onAbort: (listener: (reason: SwarmnetError) => void) => void) => Promise<T>): Promise<T> {
  if (signal?.aborted) return Promise.reject(signal.reason ?? new AbortedError("transfer aborted"));
  const listeners: Array<(reason: SwarmnetError) => void> = [];
  const onAbort = (): void => {
    const reason = new AbortedError("transfer aborted", { cause: signal?.reason });
    for (const l of listeners) l(reason);
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  return run((l) => listeners.push(l)).finally(() => signal?.removeEventListener("abort", onAbort));
}

// ---- one client -------------------------------------------------------------------

/** A download task: whole files, or one byte range of one split file. */
interface DownloadTask {
  readonly files: ReadonlyArray<{ file: PlannedFile; offset: number; end: number; mode: "whole" | "range" }>;
  readonly bytes: number;
}

async function runDownloadTask(
  channel: TransferChannel,
  plan: DownloadPlan,
  task: DownloadTask,
  tune: Tuning,
  progress: ProgressTracker,
  onAbort: (listener: (reason: SwarmnetError) => void) => void,
  onReceiver?: (receiver: FileReceiver) => void,
): Promise<void> {
  const items: ReceiveItem[] = task.files.map(({ file, offset, end, mode }) => ({
    label: file.local,
    target: mode === "whole" ? file.local : file.local + PART_SUFFIX,
    mode,
    offset,
    end,
    sha256: mode === "whole" ? file.sha256 : undefined,
  }));
  const message = {
    type: "file.get",
    ...(plan.folder !== undefined ? { folder: plan.folder } : {}),
    files: task.files.map(({ file, offset, end }) => [file.remote, offset, end]),
    chunkBytes: tune.chunkBytes,
    windowBytes: tune.windowBytes,
    windowFiles: tune.windowFiles,
  };
  let sink: DownloadSink | undefined;
  onAbort((reason) => sink?.abort(reason));
  await channel.run(
    message,
    (id, control) => {
      const written = items.map((it) => it.offset);
      sink = new DownloadSink(id, control, (grant) =>
        new FileReceiver({
          items,
          windowBytes: tune.windowBytes,
          windowFiles: tune.windowFiles,
          grant,
          onProgress: (index, fileBytes, done) => {
            const t = task.files[index]!;
            const delta = fileBytes - written[index]!;
            written[index] = fileBytes;
            progress.add(t.file.local, t.file.size, delta, done && t.mode === "whole");
          },
        }), tune.timeoutMs);
      onReceiver?.(sink.receiver);
      return sink;
    },
    tune.timeoutMs,
  );
}

/** `client.getFilesFromGateway(...)`: one request for the whole set. Resolves with the local paths, in listing order. */
export async function getFiles(channel: TransferChannel, options: GetFilesOptions): Promise<string[]> {
  const tune = tuning(channel, options);
  return withSignal(options.signal, async (onAbort) => {
    const plan = await planDownload(channel, options, tune.timeoutMs);
    if (plan.files.length === 0) return [];
    const progress = new ProgressTracker(plan.files.map((f) => ({ local: f.local, size: f.size, have: f.have })), options, "download", channel.verbose);
    try {
      const task: DownloadTask = {
        files: plan.files.map((file) => ({ file, offset: file.have, end: file.size, mode: "whole" as const })),
        bytes: plan.files.reduce((n, f) => n + f.size - f.have, 0),
      };
      await runDownloadTask(channel, plan, task, tune, progress, onAbort);
    } finally {
      progress.finish();
    }
    return plan.files.map((f) => f.local);
  });
}

interface UploadFile {
  readonly local: string;
  readonly name: string;
  readonly size: number;
}

async function planUpload(options: SendFilesOptions): Promise<UploadFile[]> {
  if (typeof options !== "object" || options === null || typeof options.dirname !== "string" || !Array.isArray(options.files)) {
    throw new InvalidArgumentError("sendFilesToGateway needs { dirname, files }");
  }
  if (options.dirname !== ".") checkRelativePath(options.dirname, "dirname");
  const seen = new Set<string>();
  const out: UploadFile[] = [];
  for (const local of options.files) {
    if (typeof local !== "string" || local.length === 0) throw new InvalidArgumentError("sendFilesToGateway: files must be non-empty paths");
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
    if (!st.isFile()) throw fileError(Object.assign(new Error("not a regular file"), { code: "EISDIR" }), local);
    out.push({ local: resolvePath(local), name, size: st.size });
  }
  return out;
}

async function runUploadTask(channel: TransferChannel, dirname: string, files: readonly UploadFile[], verify: boolean, tune: Tuning, progress: ProgressTracker, onAbort: (listener: (reason: SwarmnetError) => void) => void): Promise<void> {
  let sha256: Uint8Array[] | undefined;
  if (verify) {
    const digests: Uint8Array[] = new Array<Uint8Array>(files.length);
    // A few at a time: each hash streams its file through a 1 MiB buffer.
    await forEachLimit(files.map((f, i) => ({ f, i })), 4, async ({ f, i }) => {
      digests[i] = await sha256File(f.local);
    });
    sha256 = digests;
  }
  const message = {
    type: "file.put",
    dirname,
    files: files.map((f) => [f.name, f.size]),
    ...(sha256 ? { sha256 } : {}),
    chunkBytes: tune.chunkBytes,
  };
  let sink: UploadSink | undefined;
  onAbort((reason) => sink?.abort(reason));
  await channel.run(
    message,
    (id, control) => {
      sink = new UploadSink(id, control, files, tune.chunkBytes, tune.timeoutMs, (index, delta, done) => {
        const f = files[index]!;
        progress.add(f.local, f.size, delta, done);
      });
      return sink;
    },
    tune.timeoutMs,
  );
}

/** `client.sendFilesToGateway(...)`: one request for the whole set. Resolves with the number of files in place. */
export async function sendFiles(channel: TransferChannel, options: SendFilesOptions): Promise<number> {
  const tune = tuning(channel, options);
  return withSignal(options.signal, async (onAbort) => {
    const files = await planUpload(options);
    if (files.length === 0) return 0;
    const progress = new ProgressTracker(files.map((f) => ({ local: f.local, size: f.size, have: 0 })), options, "upload", channel.verbose);
    try {
      await runUploadTask(channel, options.dirname, files, options.verify === true, tune, progress, onAbort);
    } finally {
      progress.finish();
    }
    return files.length;
  });
}

// ---- a swarm ------------------------------------------------------------------------

/** Packs files (largest first) into tasks: big ones alone, small ones together, so no round trip per file. */
function packWhole<T extends { size: number }>(files: readonly T[], clients: number): T[][] {
  const total = files.reduce((n, f) => n + f.size, 0);
  // About one batch per client: each batch is one request, and a request costs a round trip.
  const batchBytes = Math.max(1024 * 1024, Math.min(64 * 1024 * 1024, Math.ceil(total / clients)));
  const batchFiles = Math.max(16, Math.ceil(files.length / clients));
  const tasks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const f of files) {
    if (current.length > 0 && (bytes + f.size > batchBytes || current.length >= batchFiles)) {
      tasks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(f);
    bytes += f.size;
  }
  if (current.length > 0) tasks.push(current);
  return tasks;
}

/** Runs `tasks` over the channels, one task per channel at a time; the first failure stops the rest. */
async function spread<T>(channels: readonly TransferChannel[], tasks: readonly T[], run: (channel: TransferChannel, task: T) => Promise<void>): Promise<void> {
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

/** `swarm.getFilesFromGateway(...)`. */
export async function swarmGetFiles(channels: readonly TransferChannel[], options: GetFilesOptions): Promise<string[]> {
  const first = channels[0];
  if (!first) throw new InvalidArgumentError("a swarm needs at least one client");
  const tune = tuning(first, options);
  const splitBytes = positiveInt("splitBytes", options.splitBytes, DEFAULT_FILE_SPLIT_BYTES);
  return withSignal(options.signal, async (onAbort) => {
    const plan = await planDownload(first, options, tune.timeoutMs);
    if (plan.files.length === 0) return [];
    const progress = new ProgressTracker(plan.files.map((f) => ({ local: f.local, size: f.size, have: f.have })), options, "download", first.verbose);
    const bySize = [...plan.files].sort((a, b) => b.size - b.have - (a.size - a.have));
    const split = channels.length > 1 ? bySize.filter((f) => f.size - f.have > splitBytes) : [];
    const whole = bySize.filter((f) => !split.includes(f));
    const tasks: DownloadTask[] = [];
    const splits = new Map<PlannedFile, { ranges: Array<{ start: number; end: number; receiver?: FileReceiver; index: number }>; left: number }>();
    for (const file of split) {
      // Created (not truncated) here; every range writes into it by position.
      await (await open(file.local + PART_SUFFIX, "a")).close();
      const count = Math.min(channels.length, Math.ceil((file.size - file.have) / splitBytes));
      const span = Math.ceil((file.size - file.have) / count / tune.chunkBytes) * tune.chunkBytes;
      const ranges: Array<{ start: number; end: number; index: number }> = [];
      for (let start = file.have; start < file.size; start += span) ranges.push({ start, end: Math.min(file.size, start + span), index: ranges.length });
      splits.set(file, { ranges, left: ranges.length });
      for (const r of ranges) tasks.push({ files: [{ file, offset: r.start, end: r.end, mode: "range" }], bytes: r.end - r.start });
    }
    for (const group of packWhole(whole, channels.length)) {
      tasks.push({ files: group.map((file) => ({ file, offset: file.have, end: file.size, mode: "whole" as const })), bytes: group.reduce((n, f) => n + f.size - f.have, 0) });
    }
    tasks.sort((a, b) => b.bytes - a.bytes);
    const finishSplit = async (file: PlannedFile): Promise<void> => {
      const part = file.local + PART_SUFFIX;
      // Zero chunks were not written: the length comes from here.
      await truncate(part, file.size);
      const { size } = await stat(part);
      if (size !== file.size) throw new FileIntegrityError(`${JSON.stringify(file.local)} is ${size} bytes, ${file.size} expected`);
      if (file.sha256 && Buffer.compare(await sha256File(part), file.sha256) !== 0) {
        await truncate(part, 0);
        throw new FileIntegrityError(`${JSON.stringify(file.local)}: SHA-256 does not match the source`);
      }
      await rename(part, file.local);
      progress.add(file.local, file.size, 0, true);
    };
    try {
      await spread(channels, tasks, async (channel, task) => {
        const only = task.files[0]!;
        const info = only.mode === "range" ? splits.get(only.file) : undefined;
        const range = info?.ranges.find((r) => r.start === only.offset);
        await runDownloadTask(channel, plan, task, tune, progress, onAbort, (receiver) => {
          if (range) range.receiver = receiver;
        });
        if (info && --info.left === 0) await finishSplit(only.file);
      });
    } catch (error) {
      // Leave each unfinished split .part as a clean prefix, so the next download resumes from it.
      for (const [file, info] of splits) {
        if (info.left === 0) continue;
        let prefix = file.have;
        for (const r of info.ranges) {
          const written = r.receiver?.writtenOf(0) ?? r.start;
          prefix = written;
          if (written < r.end) break;
        }
        await truncate(file.local + PART_SUFFIX, prefix).catch(() => undefined);
      }
      throw error;
    } finally {
      progress.finish();
    }
    return plan.files.map((f) => f.local);
  });
}

/** `swarm.sendFilesToGateway(...)`: whole files spread over the clients, largest first. */
export async function swarmSendFiles(channels: readonly TransferChannel[], options: SendFilesOptions): Promise<number> {
  const first = channels[0];
  if (!first) throw new InvalidArgumentError("a swarm needs at least one client");
  const tune = tuning(first, options);
  return withSignal(options.signal, async (onAbort) => {
    const files = await planUpload(options);
    if (files.length === 0) return 0;
    const progress = new ProgressTracker(files.map((f) => ({ local: f.local, size: f.size, have: 0 })), options, "upload", first.verbose);
    const bySize = [...files].sort((a, b) => b.size - a.size);
    try {
      await spread(channels, packWhole(bySize, channels.length), (channel, group) =>
        runUploadTask(channel, options.dirname, group, options.verify === true, tune, progress, onAbort),
      );
    } finally {
      progress.finish();
    }
    return files.length;
  });
}
