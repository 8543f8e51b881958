/**
 * The data plane of a file transfer, the same on both ends of the wire: a
 * FileSender reads byte ranges through `fs/promises` file handles and emits
 * `file.data` messages (the bytes in the raw frame, never copied into CBOR)
 * while the receiver's credit allows; a FileReceiver writes them by position
 * into each file's `PartFile` (actors/part-file.ts), grants credit once they
 * are on disk, and has the PartFile finish (check, rename) a file when every
 * byte is there. The gateway runs a sender for downloads and a receiver for
 * uploads (actors/file-jobs.ts); the client the other way round
 * (runtime/files.ts).
 *
 * A file that fails (unreadable, not a regular file, changed while being
 * read, a write error) fails alone: the sender says so with `file.error` and
 * goes on with the next file, the receiver records it and goes on too. Only a
 * protocol fault or a cancel ends the whole transfer.
 *
 * Memory is bounded by the window on both sides: the sender has at most
 * `windowBytes` (plus one chunk) read and not yet written by the receiver,
 * and at most `windowFiles` ranges started and not yet completed.
 */
import { closeSync, constants, fstatSync, readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import {
  AbortedError,
  FileAccessError,
  ProtocolError,
  SourceChangedError,
  SwarmnetError,
  type FileDataMessage,
  kindOfEntry,
} from "../protocol/index.js";
import { localFileError, type PartFile, type SourceIdentity } from "./part-file.js";

/**
 * Opens a file the caller already resolved to its real path: never through a
 * symlink, and never blocking (a FIFO put in a file's place would block an
 * `open` for reading forever; O_NONBLOCK does nothing to regular files).
 */
export const READ_NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Files read at once by a sender: hides per-file open/close latency for small files. */
const SENDER_CONCURRENCY = 8;
/** Reads of one file in flight at once. */
const READ_AHEAD = 3;
/**
 * Small files (one chunk) are opened, checked, read and closed synchronously:
 * a few microseconds each from the page cache, against three thread-pool
 * round trips that cost far more (and more still on a loaded machine). At
 * most SYNC_SLICE_MS of the event loop at a time, then a turn for everyone
 * else; a file that alone takes longer than SYNC_SLOW_MS (a cold or slow
 * disk) sends the rest of the transfer the asynchronous way.
 */
const SYNC_SLICE_MS = 2;
const SYNC_SLOW_MS = 5;

export type TransferProgress = {
  readonly kind: "files";
  readonly direction: "send" | "receive";
  /** The file being transferred right now (the last one touched). */
  readonly file: string | undefined;
  readonly fileBytes: number;
  readonly fileSize: number;
  readonly filesDone: number;
  readonly files: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
};

/** One file (or range) that did not make it, and why. */
export interface ItemFailure {
  readonly index: number;
  readonly label: string;
  readonly error: SwarmnetError;
}

/**
 * Checks an open handle: a regular file, of the expected identity if one is
 * given, and at least `end` bytes long. Returns its size.
 * @throws FileAccessError for anything but a regular file; SourceChangedError when it changed.
 */
export function checkReadable(fh: FileHandle, label: string, end: number, expect?: SourceIdentity): SourceIdentity {
  return checkReadableFd(fh.fd, label, end, expect);
}

function checkReadableFd(fd: number, label: string, end: number, expect?: SourceIdentity): SourceIdentity {
  // fstat of an open descriptor touches no disk (the inode came with the open): synchronous, it costs
  // about a microsecond instead of a thread-pool round trip per file.
  const st = fstatSync(fd);
  if (!st.isFile()) throw new FileAccessError(`${JSON.stringify(label)} is ${kindOfEntry(st)}, not a regular file: refused`);
  if (expect !== undefined && (st.size !== expect.size || st.mtimeMs !== expect.mtimeMs)) {
    throw new SourceChangedError(`${JSON.stringify(label)}: source changed since it was listed (${changeOf(expect, st)})`);
  }
  if (st.size < end)
    throw new SourceChangedError(`${JSON.stringify(label)}: source changed while being read (size ${expect?.size ?? end} -> ${st.size})`);
  return { size: st.size, mtimeMs: st.mtimeMs };
}

/**
 * Once every byte of a file (or range) is read, before its last chunk goes: a
 * source rewritten meanwhile would arrive torn, half old, half new. It goes
 * only if the file was not touched, or only grew (a log appended to: the bytes
 * sent are its first ones, unchanged; `verify` checks them if it matters).
 * @throws SourceChangedError
 */
function checkUntouched(fd: number, label: string, opened: SourceIdentity): void {
  const st = fstatSync(fd);
  if (st.size < opened.size || (st.size === opened.size && st.mtimeMs !== opened.mtimeMs)) {
    throw new SourceChangedError(`${JSON.stringify(label)}: source changed while being read (${changeOf(opened, st)})`);
  }
}

/** "size X -> Y", or "modified at ..., same size" when only the mtime moved. */
function changeOf(before: SourceIdentity, now: SourceIdentity): string {
  if (before.size !== now.size) return `size ${before.size} -> ${now.size}`;
  return `modified at ${new Date(now.mtimeMs).toISOString()}, same size ${now.size}`;
}

// ---- sender -----------------------------------------------------------------------

export interface SendItem {
  /** File index in the request (`f` on the wire); several items may share one (several ranges of a file). */
  readonly f: number;
  /** For progress and errors: the path as the peer named it. */
  readonly label: string;
  readonly offset: number;
  /** Exclusive end; a file shorter than this changed: SourceChangedError for this file. */
  readonly end: number;
  /** When set, the file must still have this size and mtime (a resumed or split file is never spliced from two versions). */
  readonly expect?: SourceIdentity | undefined;
}

export interface FileSenderOptions {
  readonly id: number;
  readonly items: readonly SendItem[];
  /** Opens item `index` for reading (the caller's sandbox checks where it leads); use READ_NO_FOLLOW. */
  readonly open: (index: number) => Promise<FileHandle>;
  /**
   * The same, synchronously, as a file descriptor; undefined when it cannot
   * be told without the thread pool (then `open` is used). Used for files of
   * one chunk (see SYNC_SLICE_MS).
   */
  readonly openSync?: (index: number) => number | undefined;
  readonly chunkBytes: number;
  readonly windowBytes: number;
  readonly windowFiles: number;
  readonly emit: (message: FileDataMessage, raw: Uint8Array) => void;
  /** Tells the receiver that file `f` failed here (a `file.error`). */
  readonly emitError: (f: number, error: SwarmnetError) => void;
  /** After each chunk is emitted. */
  readonly onSent?: (index: number, fileBytes: number) => void;
}

export class FileSender {
  readonly #o: FileSenderOptions;
  #windowBytes: number;
  #windowFiles: number;
  #next = 0;
  #sentBytes = 0;
  #ackedBytes = 0;
  #filesStarted = 0;
  #filesAcked = 0;
  #filesSent = 0;
  #emittedBytes = 0;
  #state: "running" | "cancelled" | "failed" = "running";
  #waiters: Array<() => void> = [];
  #current: { label: string; bytes: number; size: number } | undefined;
  readonly #failures: ItemFailure[] = [];
  readonly #bytesTotal: number;

  constructor(options: FileSenderOptions) {
    this.#o = options;
    this.#windowBytes = options.windowBytes;
    this.#windowFiles = options.windowFiles;
    this.#bytesTotal = options.items.reduce((n, it) => n + (it.end - it.offset), 0);
  }

  /** The receiver wrote `bytes` and completed `files` ranges: the window slides. */
  credit(bytes: number, files: number): void {
    this.#ackedBytes += bytes;
    this.#filesAcked += files;
    this.#wake();
  }

  /** The receiver's window, when it is known only after the request (uploads). */
  setWindow(windowBytes: number, windowFiles: number): void {
    this.#windowBytes = windowBytes;
    this.#windowFiles = windowFiles;
    this.#wake();
  }

  /** Stops reading; open handles close; `run()` rejects with AbortedError. */
  cancel(): void {
    if (this.#state === "running") this.#state = "cancelled";
    this.#wake();
  }

  /** Bytes emitted so far. */
  get bytesSent(): number {
    return this.#emittedBytes;
  }

  /** Bytes emitted and not yet acknowledged, now. */
  get outstanding(): number {
    return this.#sentBytes - this.#ackedBytes;
  }

  progress(): TransferProgress {
    return {
      kind: "files",
      direction: "send",
      file: this.#current?.label,
      fileBytes: this.#current?.bytes ?? 0,
      fileSize: this.#current?.size ?? 0,
      filesDone: this.#filesSent,
      files: this.#o.items.length,
      bytesDone: this.#emittedBytes,
      bytesTotal: this.#bytesTotal,
    };
  }

  /** Sends every item; resolves when the last byte has been emitted (not when it was written), with the items that failed here. */
  async run(): Promise<{ files: number; bytes: number; failures: readonly ItemFailure[] }> {
    const workers = Math.min(SENDER_CONCURRENCY, this.#o.items.length);
    try {
      await Promise.all(Array.from({ length: workers }, () => this.#worker()));
    } catch (err) {
      if (this.#state === "running") this.#state = "failed";
      this.#wake();
      throw err;
    }
    if (this.#state === "cancelled") throw new AbortedError("file transfer cancelled");
    return { files: this.#filesSent, bytes: this.#emittedBytes, failures: this.#failures };
  }

  async #worker(): Promise<void> {
    while (this.#state === "running" && this.#next < this.#o.items.length) {
      const index = this.#next++;
      const item = this.#o.items[index]!;
      if (item.end === item.offset) {
        // Nothing to send: the receiver completes it from the request alone.
        this.#filesSent++;
        continue;
      }
      if (!(await this.#until(() => this.#filesStarted - this.#filesAcked < this.#windowFiles))) return;
      if (this.#syncAllowed && item.end - item.offset <= this.#o.chunkBytes) {
        if (!(await this.#until(() => this.#sentBytes - this.#ackedBytes < this.#windowBytes))) return;
        if (performance.now() - this.#sliceStart > SYNC_SLICE_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          this.#sliceStart = performance.now();
          if (this.#state !== "running") return;
        }
        this.#filesStarted++;
        const sent = this.#sendSmallSync(index, item);
        if (sent !== undefined) {
          if (sent) this.#filesSent++;
          continue;
        }
        this.#filesStarted--;
      }
      this.#filesStarted++;
      if (await this.#sendFile(index, item)) this.#filesSent++;
    }
  }

  /** Whether small files still go the synchronous way (see SYNC_SLICE_MS). */
  #syncAllowed = true;
  #sliceStart = performance.now();

  /**
   * A file of one chunk, all synchronous: true when emitted, false when it
   * failed here (reported as `#sendFile` does), undefined when it could not
   * be opened without the thread pool (the caller goes the asynchronous way).
   */
  #sendSmallSync(index: number, item: SendItem): boolean | undefined {
    const started = performance.now();
    let fd: number | undefined;
    const len = item.end - item.offset;
    try {
      try {
        fd = this.#o.openSync?.(index);
      } catch (err) {
        throw err instanceof SwarmnetError ? err : localFileError(err, JSON.stringify(item.label));
      }
      if (fd === undefined) return undefined;
      const opened = checkReadableFd(fd, item.label, item.end, item.expect);
      const buf = Buffer.allocUnsafe(len);
      let filled = 0;
      while (filled < len) {
        let bytesRead: number;
        try {
          bytesRead = readSync(fd, buf, filled, len - filled, item.offset + filled);
        } catch (err) {
          throw localFileError(err, JSON.stringify(item.label));
        }
        if (bytesRead === 0) {
          const now = fstatSync(fd).size;
          throw new SourceChangedError(
            `${JSON.stringify(item.label)}: source changed while being read (size ${item.expect?.size ?? item.end} -> ${now})`,
          );
        }
        filled += bytesRead;
      }
      checkUntouched(fd, item.label, opened);
      this.#sentBytes += len;
      this.#o.emit({ type: "file.data", id: this.#o.id, f: item.f, o: item.offset }, buf);
      this.#emittedBytes += len;
      this.#current = { label: item.label, bytes: item.end, size: item.end };
      this.#o.onSent?.(index, item.end);
      return true;
    } catch (err) {
      return this.#failed(index, item, err);
    } finally {
      if (fd !== undefined) {
        try {
          closeSync(fd);
        } catch {
          // Read already; nothing to keep.
        }
      }
      if (performance.now() - started > SYNC_SLOW_MS) this.#syncAllowed = false;
    }
  }

  /** False when the file failed here (reported to the receiver) or the transfer stopped. */
  async #sendFile(index: number, item: SendItem): Promise<boolean> {
    let fh: FileHandle | undefined;
    // Bytes counted against the window (before their read) that were not emitted.
    let counted = 0;
    try {
      try {
        fh = await this.#o.open(index);
      } catch (err) {
        throw localFileError(err, JSON.stringify(item.label));
      }
      const opened = checkReadable(fh, item.label, item.end, item.expect);
      // Up to READ_AHEAD reads of this file in flight (the thread pool reads the next chunks while
      // this thread hands the current one to the socket); emitted strictly in order.
      const file = fh;
      const reads: Array<{ pos: number; data: Promise<Buffer> }> = [];
      let next = item.offset;
      let pos = item.offset;
      while (pos < item.end) {
        while (next < item.end && reads.length < READ_AHEAD && this.#sentBytes - this.#ackedBytes < this.#windowBytes) {
          const len = Math.min(this.#o.chunkBytes, item.end - next);
          // Counted before the read, so that concurrent reads share the window instead of each overshooting it.
          this.#sentBytes += len;
          counted += len;
          const data = this.#readChunk(file, item, next, len);
          data.catch(() => undefined);
          reads.push({ pos: next, data });
          next += len;
        }
        const head = reads.shift();
        if (head === undefined) {
          if (!(await this.#until(() => this.#sentBytes - this.#ackedBytes < this.#windowBytes))) return false;
          continue;
        }
        const buf = await head.data;
        if (this.#state !== "running") return false;
        if (head.pos + buf.length === item.end) checkUntouched(file.fd, item.label, opened);
        this.#o.emit({ type: "file.data", id: this.#o.id, f: item.f, o: head.pos }, buf);
        counted -= buf.length;
        this.#emittedBytes += buf.length;
        pos = head.pos + buf.length;
        this.#current = { label: item.label, bytes: pos, size: item.end };
        this.#o.onSent?.(index, pos);
      }
      return true;
    } catch (err) {
      if (this.#state !== "running") return false;
      // Its share of the window back: counted before the reads, never emitted.
      this.#sentBytes -= counted;
      return this.#failed(index, item, err);
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /** This file alone failed: it leaves the window, is recorded, and the receiver is told. Returns false. */
  #failed(index: number, item: SendItem, err: unknown): false {
    this.#filesStarted--;
    const error = err instanceof SwarmnetError ? err : localFileError(err, JSON.stringify(item.label));
    this.#failures.push({ index, label: item.label, error });
    this.#o.emitError(item.f, error);
    this.#wake();
    return false;
  }

  /** Reads exactly `len` bytes at `pos`; a file that ends early changed under us. */
  async #readChunk(fh: FileHandle, item: SendItem, pos: number, len: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(len);
    let filled = 0;
    while (filled < len) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(buf, filled, len - filled, pos + filled));
      } catch (err) {
        throw localFileError(err, JSON.stringify(item.label));
      }
      if (bytesRead === 0) {
        const now = await fh.stat().then(
          (st) => st.size,
          () => pos + filled,
        );
        throw new SourceChangedError(
          `${JSON.stringify(item.label)}: source changed while being read (size ${item.expect?.size ?? item.end} -> ${now})`,
        );
      }
      filled += bytesRead;
    }
    return buf;
  }

  /** Waits until `ready()` holds; false if the transfer stopped meanwhile. */
  async #until(ready: () => boolean): Promise<boolean> {
    while (this.#state === "running" && !ready()) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.#state === "running";
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

// ---- receiver ---------------------------------------------------------------------

export interface ReceiveItem {
  /** For progress and errors. */
  readonly label: string;
  /**
   * Where the bytes go; shared with other receivers when a file is split over
   * several clients. Undefined for a file refused up front (nothing comes for it).
   */
  readonly part: PartFile | undefined;
  /** The byte ranges this transfer carries for the file, in the order the sender sends them. */
  readonly segments: ReadonlyArray<readonly [start: number, end: number]>;
}

export interface FileReceiverOptions {
  readonly items: readonly ReceiveItem[];
  readonly windowBytes: number;
  readonly windowFiles: number;
  /** Sends credit to the sender. */
  readonly grant: (bytes: number, files: number) => void;
  /** After each write, and once more when the file is complete and in place (`done`). */
  readonly onProgress?: (index: number, delta: number, done: boolean) => void;
  /** Item `index` failed here (a write error, an integrity check). */
  readonly onItemFailed?: (index: number, error: SwarmnetError) => void;
}

interface ReceiveState {
  segment: number;
  next: number;
  chain: Promise<void>;
  failed: boolean;
  /** Counted in `#remaining` already (finished, or failed and given up on). */
  settled: boolean;
}

export interface ReceiveResult {
  /** Items finished: the file is in place, or (a range of a split file) its bytes are written. */
  readonly files: number;
  readonly bytes: number;
  readonly failures: readonly ItemFailure[];
  /** Indexes of the items whose file this transfer put in place. */
  readonly placed: readonly number[];
}

export class FileReceiver {
  readonly #o: FileReceiverOptions;
  readonly #states: ReceiveState[];
  #remaining: number;
  #unackedBytes = 0;
  #unackedFiles = 0;
  #bytesDone = 0;
  #filesDone = 0;
  readonly #failures: ItemFailure[] = [];
  readonly #placed: number[] = [];
  #state: "running" | "done" | "failed" | "cancelled" = "running";
  #current: { label: string; bytes: number; size: number } | undefined;
  readonly #bytesTotal: number;
  readonly #done: Promise<ReceiveResult>;
  #settle!: { resolve: (v: ReceiveResult) => void; reject: (e: SwarmnetError) => void };

  constructor(options: FileReceiverOptions) {
    this.#o = options;
    this.#states = options.items.map((it) => ({
      segment: 0,
      next: it.segments[0]?.[0] ?? 0,
      chain: Promise.resolve(),
      failed: false,
      settled: false,
    }));
    this.#remaining = options.items.length;
    this.#bytesTotal = options.items.reduce((n, it) => n + it.segments.reduce((m, [s, e]) => m + e - s, 0), 0);
    this.#done = new Promise((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    this.#done.catch(() => undefined);
  }

  /** Resolves when every item is finished or failed; rejects only when the whole transfer failed. */
  get done(): Promise<ReceiveResult> {
    return this.#done;
  }

  get finished(): boolean {
    return this.#state !== "running";
  }

  /** Completes the items with nothing to receive; call once, after construction. */
  start(): void {
    if (this.#o.items.length === 0) {
      this.#finish();
      return;
    }
    // One at a time: thousands of empty files must not mean thousands of renames at once.
    void (async () => {
      for (let index = 0; index < this.#o.items.length && this.#state === "running"; index++) {
        const item = this.#o.items[index]!;
        if (item.segments.some(([s, e]) => e > s)) continue;
        const st = this.#states[index]!;
        st.chain = st.chain.then(() => this.#complete(index, item, st));
        await st.chain;
      }
    })();
  }

  /** Bytes `[o, o + raw.length)` of item `f`. Data that does not continue its item fails the transfer (a protocol fault). */
  onData(f: number, o: number, raw: Uint8Array): void {
    if (this.#state !== "running") return;
    const item = this.#o.items[f];
    const st = this.#states[f];
    if (item !== undefined && st !== undefined) {
      let seg = item.segments[st.segment];
      // The previous segment is complete: the sender goes on with the next one.
      if (seg !== undefined && st.next === seg[1] && item.segments[st.segment + 1] !== undefined) {
        st.segment++;
        seg = item.segments[st.segment];
        st.next = seg![0];
      }
      if (seg !== undefined && o === st.next && raw.length > 0 && o + raw.length <= seg[1]) {
        st.next = o + raw.length;
        const segmentDone = st.next === seg[1];
        const last = segmentDone && st.segment === item.segments.length - 1;
        st.chain = st.chain.then(() => this.#write(f, item, st, o, raw, segmentDone, last));
        return;
      }
    }
    this.#fail(new ProtocolError(`file.data for file ${f} at ${o} (+${raw.length}) does not continue the transfer`));
  }

  /** The sender could not send item `f` (a `file.error`): it fails alone. */
  onItemError(f: number, error: SwarmnetError): void {
    if (this.#state !== "running") return;
    const item = this.#o.items[f];
    const st = this.#states[f];
    if (item === undefined || st === undefined) {
      this.#fail(new ProtocolError(`file.error for file ${f}, which is not in the transfer`));
      return;
    }
    st.chain = st.chain.then(() => {
      if (st.settled) return;
      if (!st.failed) {
        // The sender knows already: recorded here, not echoed back.
        st.failed = true;
        this.#failures.push({ index: f, label: item.label, error });
      }
      this.#settleItem(st);
    });
  }

  /** Fails the transfer from outside (the call failed, the peer went away). */
  fail(error: SwarmnetError): void {
    this.#fail(error);
  }

  /** Stops without answering: nothing more is written or renamed. */
  cancel(): void {
    if (this.#state !== "running") return;
    this.#state = "cancelled";
    this.#settle.reject(new AbortedError("file transfer cancelled"));
  }

  /** Settles once every write already queued is done (so the PartFiles can be released after). */
  async drained(): Promise<void> {
    await Promise.all(this.#states.map((st) => st.chain.catch(() => undefined)));
  }

  progress(): TransferProgress {
    return {
      kind: "files",
      direction: "receive",
      file: this.#current?.label,
      fileBytes: this.#current?.bytes ?? 0,
      fileSize: this.#current?.size ?? 0,
      filesDone: this.#filesDone,
      files: this.#o.items.length,
      bytesDone: this.#bytesDone,
      bytesTotal: this.#bytesTotal,
    };
  }

  async #write(
    f: number,
    item: ReceiveItem,
    st: ReceiveState,
    o: number,
    raw: Uint8Array,
    segmentDone: boolean,
    last: boolean,
  ): Promise<void> {
    if (this.#state !== "running") return;
    if (!st.failed && item.part !== undefined) {
      try {
        await item.part.write(o, raw);
        this.#bytesDone += raw.length;
        this.#current = { label: item.label, bytes: o + raw.length, size: item.part.source.size };
        this.#o.onProgress?.(f, raw.length, false);
      } catch (err) {
        if (this.#state !== "running") return;
        this.#itemFailed(f, item, st, localFileError(err, JSON.stringify(item.label)));
      }
    }
    // Credit flows for a failed item's bytes too: the sender still sends them.
    this.#unackedBytes += raw.length;
    if (last && !st.failed) {
      await this.#complete(f, item, st);
      return;
    }
    if (segmentDone) this.#unackedFiles++;
    if (last && !st.settled) this.#settleItem(st);
    else this.#maybeGrant();
  }

  async #complete(index: number, item: ReceiveItem, st: ReceiveState): Promise<void> {
    if (this.#state !== "running" || st.settled) return;
    const part = item.part;
    if (part === undefined) {
      // Refused up front: reported with the answer to the request already.
      this.#settleItem(st);
      return;
    }
    try {
      // A split file is finished by whichever range writes its last missing byte (and counted by it alone).
      if (part.complete && part.writable) {
        await part.finish();
        this.#placed.push(index);
        this.#o.onProgress?.(index, 0, true);
      }
      this.#filesDone++;
    } catch (err) {
      if (this.#state !== "running") return;
      this.#itemFailed(index, item, st, localFileError(err, JSON.stringify(item.label)));
    }
    if (item.segments.some(([s, e]) => e > s)) this.#unackedFiles++;
    this.#current = { label: item.label, bytes: part.source.size, size: part.source.size };
    this.#settleItem(st);
  }

  #itemFailed(index: number, item: ReceiveItem, st: ReceiveState, error: SwarmnetError): void {
    st.failed = true;
    this.#failures.push({ index, label: item.label, error });
    this.#o.onItemFailed?.(index, error);
  }

  #settleItem(st: ReceiveState): void {
    st.settled = true;
    this.#remaining--;
    if (this.#remaining === 0) this.#finish();
    else this.#maybeGrant();
  }

  #maybeGrant(): void {
    if (
      this.#unackedBytes >= Math.max(1, this.#o.windowBytes / 4) ||
      this.#unackedFiles >= Math.max(1, Math.floor(this.#o.windowFiles / 4))
    ) {
      this.#o.grant(this.#unackedBytes, this.#unackedFiles);
      this.#unackedBytes = 0;
      this.#unackedFiles = 0;
    }
  }

  #finish(): void {
    if (this.#state !== "running") return;
    this.#state = "done";
    this.#settle.resolve({ files: this.#filesDone, bytes: this.#bytesDone, failures: this.#failures, placed: this.#placed });
  }

  #fail(error: SwarmnetError): void {
    if (this.#state !== "running") return;
    this.#state = "failed";
    this.#settle.reject(error);
  }
}
