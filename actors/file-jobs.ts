/**
 * The gateway's file jobs, run outside the handler machine like a StreamJob:
 * the machine knows which transfer runs (`busy.listingFiles`,
 * `busy.downloading`, `busy.uploading`) and can cancel it; chunks and
 * credit go straight between the dispatcher and the job.
 *
 * Every job answers the client itself (`file.listing`, `file.done` or an
 * `error`) and then calls `onFinish`; a cancelled job answers nothing,
 * closes its file handles and renames nothing.
 */
import { openSync } from "node:fs";
import { open } from "node:fs/promises";
import { basename, join } from "node:path";
import {
  DEFAULT_FILE_WINDOW_BYTES,
  DEFAULT_FILE_WINDOW_FILES,
  ErrorCode,
  InvalidArgumentError,
  MAX_FILE_CHUNK_BYTES,
  MAX_FILE_WINDOW_BYTES,
  MAX_FILE_WINDOW_FILES,
  PathNotAllowedError,
  SwarmnetError,
  checkName,
  errorFromWire,
  errorReply,
  localNameProblem,
  normalizeRequestPath,
  type ClientMessage,
  type FileGetMessage,
  type FileListMessage,
  type FilePutMessage,
} from "../protocol/index.js";
import { fileError, type FileSandbox } from "./file-sandbox.js";
import { FileReceiver, FileSender, READ_NO_FOLLOW, type ReceiveItem, type TransferProgress } from "./file-transfer.js";
import { DEFAULT_IF_EXISTS, PartFile, chooseTarget } from "./part-file.js";
import type { Job, JobOutcome, JobProgress, Replier } from "./job.js";

/** Most messages a transfer may have queued towards one peer from its byte window. */
const MAX_CHUNKS_IN_WINDOW = 256;

function failure(err: unknown): { code: string; message: string } {
  if (err instanceof SwarmnetError) return { code: err.code, message: err.message };
  const e = fileError(err, "file transfer");
  return { code: e.code, message: e.message };
}

abstract class FileJob implements Job {
  readonly id: number;
  protected readonly session: Replier;
  protected readonly sandbox: FileSandbox;
  readonly #onFinish: (outcome: JobOutcome) => void;
  protected cancelled = false;

  constructor(options: { id: number; session: Replier; sandbox: FileSandbox; onFinish: (outcome: JobOutcome) => void }) {
    this.id = options.id;
    this.session = options.session;
    this.sandbox = options.sandbox;
    this.#onFinish = options.onFinish;
  }

  start(): void {
    void this.#run();
  }

  abstract onMessage(message: ClientMessage, raw: Uint8Array | undefined): void;
  abstract progress(): JobProgress;
  protected abstract work(): Promise<number>;
  protected abstract stop(): void;

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.stop();
  }

  async #run(): Promise<void> {
    let outcome: JobOutcome;
    try {
      outcome = { type: "done", count: await this.work() };
    } catch (err) {
      if (this.cancelled) return;
      const f = failure(err);
      outcome = { type: "failed", ...f };
      this.session.reply(errorReply(this.id, f.code, f.message));
    }
    if (this.cancelled) return;
    this.#onFinish(outcome);
  }
}

/** `file.list`: walks a folder (or checks given files) and answers `file.listing`. */
export class FileListJob extends FileJob {
  readonly #message: FileListMessage;
  #listed = 0;

  constructor(options: { message: FileListMessage; session: Replier; sandbox: FileSandbox; onFinish: (outcome: JobOutcome) => void }) {
    super({ ...options, id: options.message.id });
    this.#message = options.message;
  }

  onMessage(): void {}

  protected stop(): void {}

  progress() {
    return { kind: "fileList", folder: this.#message.folder, listed: this.#listed };
  }

  protected async work(): Promise<number> {
    const m = this.#message;
    const isCancelled = (): boolean => this.cancelled;
    const listing =
      m.files !== undefined
        ? await this.sandbox.listFiles(m.files, m.hash === true, isCancelled)
        : await this.sandbox.listFolder(m.folder ?? ".", m.regex, m.hash === true, isCancelled);
    this.#listed = listing.files.length;
    if (this.cancelled) return 0;
    this.session.reply({
      type: "file.listing",
      id: this.id,
      files: listing.files.map((f) => (f.sha256 ? [f.path, f.size, f.sha256] : [f.path, f.size])),
      mtimes: listing.files.map((f) => f.mtimeMs),
      ...(listing.folders.length > 0 ? { folders: listing.folders } : {}),
      ...(listing.problems.length > 0 ? { problems: listing.problems.map((p) => [p.path, p.code, p.message]) } : {}),
    });
    return listing.files.length;
  }
}

/** `file.get` (a download): reads the ranges asked for and sends them under the client's credit. */
export class FileDownloadJob extends FileJob {
  readonly #sender: FileSender;
  readonly #message: FileGetMessage;

  constructor(options: { message: FileGetMessage; session: Replier; sandbox: FileSandbox; onFinish: (outcome: JobOutcome) => void }) {
    super({ ...options, id: options.message.id });
    const m = options.message;
    this.#message = m;
    const chunkBytes = Math.min(m.chunkBytes, MAX_FILE_CHUNK_BYTES);
    // Whatever the client grants, the gateway keeps its own caps (memory, ZeroMQ's queue per peer).
    const windowBytes = Math.min(m.windowBytes, MAX_FILE_WINDOW_BYTES, chunkBytes * MAX_CHUNKS_IN_WINDOW);
    const windowFiles = Math.min(m.windowFiles, MAX_FILE_WINDOW_FILES);
    let base: Promise<{ root: string; dir: string }> | undefined;
    // Where to look, once known: the synchronous open (small files) needs it at hand.
    let candidates: ReadonlyArray<{ root: string; dir: string }> | undefined;
    if (m.folder !== undefined) {
      const folder = m.folder;
      base = this.sandbox.resolve(folder).then(({ root, real }) => ({ root, dir: real }));
      base.then(
        (b) => void (candidates = [b]),
        () => undefined,
      );
    } else {
      this.sandbox.realRoots().then(
        (roots) => void (candidates = roots),
        () => undefined,
      );
    }
    this.#sender = new FileSender({
      id: m.id,
      items: m.files.map(([path, offset, end, size, mtimeMs], f) => ({
        f,
        label: path,
        offset,
        end,
        expect: size !== undefined && mtimeMs !== undefined ? { size, mtimeMs } : undefined,
      })),
      open: async (index) => {
        const path = normalizeRequestPath(m.files[index]![0]);
        const folder = base ? await base : undefined;
        // Fast path for a plain name in a resolved folder: O_NOFOLLOW refuses a symlink (ELOOP),
        // which then goes the long way through realpath and the root check.
        if (folder && !path.includes("/")) {
          checkName(path);
          try {
            return await open(join(folder.dir, path), READ_NO_FOLLOW);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "ELOOP") throw err;
          }
        }
        const { real } = await this.sandbox.resolve(path, folder);
        return open(real, READ_NO_FOLLOW);
      },
      openSync: (index) => {
        if (candidates === undefined) return undefined;
        const path = normalizeRequestPath(m.files[index]![0]);
        if (m.folder !== undefined && !path.includes("/")) {
          checkName(path);
          try {
            return openSync(join(candidates[0]!.dir, path), READ_NO_FOLLOW);
          } catch (err) {
            // A symlink (ELOOP) goes the long way through realpath and the root check; a missing file
            // gets the asynchronous path's own error.
            const code = (err as NodeJS.ErrnoException).code;
            if (code === "ELOOP" || code === "ENOENT") return undefined;
            throw err;
          }
        }
        const real = this.sandbox.resolveSync(path, candidates);
        return real === undefined ? undefined : openSync(real, READ_NO_FOLLOW);
      },
      chunkBytes,
      windowBytes,
      windowFiles,
      emit: (message, raw) => this.session.reply(message, raw),
      emitError: (f, error) => this.session.reply({ type: "file.error", id: m.id, f, code: error.code, message: error.message }),
    });
  }

  onMessage(message: ClientMessage): void {
    if (message.type === "file.credit") this.#sender.credit(message.bytes, message.files);
  }

  protected stop(): void {
    this.#sender.cancel();
  }

  progress(): TransferProgress {
    return this.#sender.progress();
  }

  protected async work(): Promise<number> {
    // Paths that can never be served refuse the whole request, before a byte moves.
    for (const [path] of this.#message.files) this.sandbox.assertRequestable(path);
    if (this.#message.folder !== undefined) await this.sandbox.resolve(this.#message.folder);
    const { files, bytes } = await this.#sender.run();
    if (!this.cancelled) this.session.reply({ type: "file.done", id: this.id, files, bytes });
    return files;
  }
}

/** `file.put` (an upload): checks every name, answers `file.ready` with the ranges still missing, writes what comes. */
export class FileUploadJob extends FileJob {
  readonly #message: FilePutMessage;
  #receiver: FileReceiver | undefined;
  readonly #parts: Array<PartFile | undefined> = [];
  readonly #released = new Set<PartFile>();

  constructor(options: { message: FilePutMessage; session: Replier; sandbox: FileSandbox; onFinish: (outcome: JobOutcome) => void }) {
    super({ ...options, id: options.message.id });
    this.#message = options.message;
  }

  onMessage(message: ClientMessage, raw: Uint8Array | undefined): void {
    if (message.type === "file.data" && raw !== undefined) this.#receiver?.onData(message.f, message.o, raw);
    else if (message.type === "file.error") this.#receiver?.onItemError(message.f, errorFromWire(message.code, message.message));
  }

  protected stop(): void {
    this.#receiver?.cancel();
    // Let go at once (after the writes in flight): a rerun of the same upload must find the targets free.
    void this.#release();
  }

  /** Each part goes back once (journal saved for a resume), whoever asks first. */
  #release(): Promise<unknown> {
    const fresh = this.#parts.filter((p): p is PartFile => p !== undefined && !this.#released.has(p));
    for (const p of fresh) this.#released.add(p);
    return Promise.all(fresh.map((p) => p.release()));
  }

  progress(): TransferProgress | { kind: string; dirname: string } {
    return this.#receiver?.progress() ?? { kind: "files", dirname: this.#message.dirname };
  }

  protected async work(): Promise<number> {
    const m = this.#message;
    const seen = new Set<string>();
    for (const [name] of m.files) {
      this.sandbox.checkUploadName(name);
      if (seen.has(name)) throw new InvalidArgumentError(`file name ${JSON.stringify(name)} appears twice in one upload`);
      seen.add(name);
    }
    const dir = await this.sandbox.uploadDir(m.dirname);
    const ifExists = m.ifExists ?? DEFAULT_IF_EXISTS;
    const parts = this.#parts;
    const missing: Array<Array<[number, number]>> = [];
    const refused: Array<[number, string, string]> = [];
    const renamed: Array<[number, string]> = [];
    try {
      for (const [i, [name, size, mtimeMs, offset, end]] of m.files.entries()) {
        let part: PartFile | undefined;
        try {
          const problem = localNameProblem(name);
          if (problem !== undefined) throw new PathNotAllowedError(`${JSON.stringify(name)}: ${problem}`);
          // Byte ranges of one source file share its .part; two files of one upload never do (a
          // renamed copy may take the name of another file of the upload: same size and mtime or not).
          const share = m.group === undefined ? undefined : `${m.group}/${name}`;
          const target = await chooseTarget(dir, name, ifExists, undefined, share);
          if (target === undefined) {
            refused.push([i, ErrorCode.FILE_EXISTS, `${JSON.stringify(name)} exists: skipped (ifExists: "skip")`]);
          } else {
            if (target !== join(dir, name)) renamed.push([i, basename(target)]);
            part = await PartFile.acquire({
              target,
              source: { size, mtimeMs: mtimeMs ?? -1 },
              sha256: m.sha256?.[i],
              replace: ifExists === "overwrite",
              share,
              // One range of a split file: the others may come after this request let go.
              journal: (offset ?? 0) > 0 || (end ?? size) < size ? true : undefined,
            });
          }
        } catch (err) {
          const e = fileError(err, JSON.stringify(name));
          refused.push([i, e.code, e.message]);
        }
        parts.push(part);
        missing.push(part ? part.missing(offset ?? 0, end ?? size) : []);
      }
      if (this.cancelled) return 0;
      return await this.#receive(parts, missing, refused, renamed);
    } finally {
      await this.#receiver?.drained();
      await this.#release();
    }
  }

  async #receive(
    parts: ReadonlyArray<PartFile | undefined>,
    missing: ReadonlyArray<ReadonlyArray<[number, number]>>,
    refused: ReadonlyArray<[number, string, string]>,
    renamed: ReadonlyArray<[number, string]>,
  ): Promise<number> {
    const m = this.#message;
    const windowBytes = Math.min(DEFAULT_FILE_WINDOW_BYTES, Math.min(m.chunkBytes, MAX_FILE_CHUNK_BYTES) * MAX_CHUNKS_IN_WINDOW);
    const windowFiles = DEFAULT_FILE_WINDOW_FILES;
    const items: ReceiveItem[] = m.files.map(([name], i) => ({ label: name, part: parts[i], segments: missing[i]! }));
    const receiver = new FileReceiver({
      items,
      windowBytes,
      windowFiles,
      grant: (bytes, files) => this.session.reply({ type: "file.credit", id: this.id, bytes, files }),
      onItemFailed: (f, error) => this.session.reply({ type: "file.error", id: this.id, f, code: error.code, message: error.message }),
    });
    this.#receiver = receiver;
    // `offsets` (where each file's missing bytes begin) for clients that send one tail per file.
    const offsets = m.files.map(([, size, , , end], i) => missing[i]![0]?.[0] ?? end ?? size);
    this.session.reply({
      type: "file.ready",
      id: this.id,
      missing,
      offsets,
      ...(refused.length > 0 ? { refused } : {}),
      ...(renamed.length > 0 ? { renamed } : {}),
      windowBytes,
      windowFiles,
    });
    receiver.start();
    const { files, bytes } = await receiver.done;
    if (!this.cancelled) this.session.reply({ type: "file.done", id: this.id, files, bytes });
    return files;
  }
}
