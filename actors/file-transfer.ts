/**
 * The data plane of a file transfer, the same on both ends of the wire: a
 * FileSender reads byte ranges through `fs/promises` file handles and emits
 * `file.data` messages (the bytes in the raw frame, never copied into CBOR)
 * while the receiver's credit allows; a FileReceiver writes them by position
 * into `NAME.part`, grants credit once they are on disk, and renames a file
 * only when every byte is there and its size (and, if asked, its SHA-256)
 * matches. The gateway runs a sender for downloads and a receiver for
 * uploads (actors/file-jobs.ts); the client the other way round
 * (runtime/files.ts).
 *
 * Memory is bounded by the window on both sides: the sender has at most
 * `windowBytes` (plus one chunk) read and not yet written by the receiver,
 * and at most `windowFiles` files started and not yet completed.
 */
import { constants } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { open, rename, unlink } from "node:fs/promises";
import {
  AbortedError,
  FileIntegrityError,
  ProtocolError,
  SwarmnetError,
  type FileDataMessage,
} from "../protocol/index.js";
import { PART_SUFFIX, fileError, sha256File } from "./file-sandbox.js";

const WRITE_FRESH = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;
const WRITE_INTO = constants.O_RDWR | constants.O_NOFOLLOW;
/** Opens a file the caller already resolved to its real path. */
export const READ_NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

/** Files read at once by a sender: hides per-file open/close latency for small files. */
const SENDER_CONCURRENCY = 8;
/** Reads of one file in flight at once. */
const READ_AHEAD = 3;

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

// ---- sender -----------------------------------------------------------------------

export interface SendItem {
  /** For progress and errors: the path as the peer named it. */
  readonly label: string;
  readonly offset: number;
  /** Exclusive end; a file shorter than this is an integrity error (it changed). */
  readonly end: number;
}

export interface FileSenderOptions {
  readonly id: number;
  readonly items: readonly SendItem[];
  /** Opens item `index` for reading (the caller's sandbox checks where it leads). */
  readonly open: (index: number) => Promise<FileHandle>;
  readonly chunkBytes: number;
  readonly windowBytes: number;
  readonly windowFiles: number;
  readonly emit: (message: FileDataMessage, raw: Uint8Array) => void;
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
  #state: "running" | "cancelled" | "failed" = "running";
  #waiters: Array<() => void> = [];
  #current: { label: string; bytes: number; size: number } | undefined;
  readonly #bytesTotal: number;

  constructor(options: FileSenderOptions) {
    this.#o = options;
    this.#windowBytes = options.windowBytes;
    this.#windowFiles = options.windowFiles;
    this.#bytesTotal = options.items.reduce((n, it) => n + (it.end - it.offset), 0);
  }

  /** The receiver wrote `bytes` and completed `files`: the window slides. */
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

  get bytesSent(): number {
    return this.#sentBytes;
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
      bytesDone: this.#sentBytes,
      bytesTotal: this.#bytesTotal,
    };
  }

  /** Sends every item; resolves when the last byte has been emitted (not when it was written). */
  async run(): Promise<{ files: number; bytes: number }> {
    const workers = Math.min(SENDER_CONCURRENCY, this.#o.items.length);
    try {
      await Promise.all(Array.from({ length: workers }, () => this.#worker()));
    } catch (err) {
      if (this.#state === "running") this.#state = "failed";
      this.#wake();
      throw err;
    }
    if (this.#state === "cancelled") throw new AbortedError("file transfer cancelled");
    return { files: this.#o.items.length, bytes: this.#sentBytes };
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
      this.#filesStarted++;
      await this.#sendFile(index, item);
      this.#filesSent++;
    }
  }

  async #sendFile(index: number, item: SendItem): Promise<void> {
    let fh: FileHandle | undefined;
    try {
      try {
        fh = await this.#o.open(index);
      } catch (err) {
        throw fileError(err, item.label);
      }
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
          const data = this.#readChunk(file, item, next, len);
          data.catch(() => undefined);
          reads.push({ pos: next, data });
          next += len;
        }
        const head = reads.shift();
        if (head === undefined) {
          if (!(await this.#until(() => this.#sentBytes - this.#ackedBytes < this.#windowBytes))) return;
          continue;
        }
        const buf = await head.data;
        if (this.#state !== "running") return;
        this.#o.emit({ type: "file.data", id: this.#o.id, f: index, o: head.pos }, buf);
        pos = head.pos + buf.length;
        this.#current = { label: item.label, bytes: pos, size: item.end };
        this.#o.onSent?.(index, pos);
      }
    } finally {
      await fh?.close().catch(() => undefined);
    }
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
        throw fileError(err, item.label);
      }
      if (bytesRead === 0) {
        throw new FileIntegrityError(`${JSON.stringify(item.label)} ended at ${pos + filled} bytes, ${item.end} expected: it changed during the transfer`);
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
  readonly label: string;
  /**
   * The final path. "whole": bytes go to `target + .part`, renamed to `target`
   * when complete. "range": bytes go straight into `target` (a .part shared by
   * several ranges), never renamed here: whoever split the file finishes it.
   */
  readonly target: string;
  readonly mode: "whole" | "range";
  readonly offset: number;
  readonly end: number;
  /** With verify: the SHA-256 the whole file must have. */
  readonly sha256?: Uint8Array | undefined;
}

export interface FileReceiverOptions {
  readonly items: readonly ReceiveItem[];
  readonly windowBytes: number;
  readonly windowFiles: number;
  /** Sends credit to the sender. */
  readonly grant: (bytes: number, files: number) => void;
  /** After each write, and once more when the file is complete (`done`). */
  readonly onProgress?: (index: number, fileBytes: number, done: boolean) => void;
}

interface ReceiveState {
  next: number;
  written: number;
  handle: Promise<FileHandle> | undefined;
  chain: Promise<void>;
  skippedZeros: boolean;
}

let zeros = Buffer.alloc(0);
/** An all-zero chunk is not written: the file stays sparse and the hole reads as zeros anyway. */
function isZero(buf: Uint8Array): boolean {
  // Most chunks are not zeros: three bytes say so without comparing the whole chunk.
  if (buf[0] !== 0 || buf[buf.length >> 1] !== 0 || buf[buf.length - 1] !== 0) return false;
  if (buf.length > zeros.length) zeros = Buffer.alloc(Math.max(buf.length, 256 * 1024));
  return Buffer.compare(buf, zeros.subarray(0, buf.length)) === 0;
}

export class FileReceiver {
  readonly #o: FileReceiverOptions;
  readonly #states: Array<ReceiveState | undefined>;
  #remaining: number;
  #unackedBytes = 0;
  #unackedFiles = 0;
  #bytesDone = 0;
  #filesDone = 0;
  #state: "running" | "done" | "failed" | "cancelled" = "running";
  #current: { label: string; bytes: number; size: number } | undefined;
  readonly #bytesTotal: number;
  readonly #done: Promise<{ files: number; bytes: number }>;
  #settle!: { resolve: (v: { files: number; bytes: number }) => void; reject: (e: SwarmnetError) => void };

  constructor(options: FileReceiverOptions) {
    this.#o = options;
    this.#states = new Array<ReceiveState | undefined>(options.items.length);
    this.#remaining = options.items.length;
    this.#bytesTotal = options.items.reduce((n, it) => n + (it.end - it.offset), 0);
    this.#done = new Promise((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    this.#done.catch(() => undefined);
  }

  /** Resolves when every file is complete (renamed, for whole files); rejects on the first failure. */
  get done(): Promise<{ files: number; bytes: number }> {
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
    // Files with nothing to receive (empty, or a complete .part) are finished here, one at a
    // time: thousands of empty files must not mean thousands of open handles at once.
    void (async () => {
      for (let index = 0; index < this.#o.items.length && this.#state === "running"; index++) {
        const item = this.#o.items[index]!;
        if (item.end !== item.offset) continue;
        const st = this.#stateOf(index, item);
        st.chain = st.chain.then(() => this.#complete(index, item, st));
        try {
          await st.chain;
        } catch (err) {
          this.#fail(fileError(err, item.label));
          return;
        }
      }
    })();
  }

  /** Bytes `[o, o + raw.length)` of item `f`. Out-of-order or out-of-range data fails the transfer. */
  onData(f: number, o: number, raw: Uint8Array): void {
    if (this.#state !== "running") return;
    const item = this.#o.items[f];
    const st = item && this.#stateOf(f, item);
    if (!item || !st || o !== st.next || o + raw.length > item.end || raw.length === 0) {
      this.#fail(new ProtocolError(`file.data for file ${f} at ${o} (+${raw.length}) does not continue the transfer`));
      return;
    }
    st.next = o + raw.length;
    const last = st.next === item.end;
    st.chain = st.chain.then(async () => {
      if (this.#state !== "running") return;
      const fh = await st.handle!;
      if (isZero(raw)) {
        st.skippedZeros = true;
      } else {
        let off = 0;
        while (off < raw.length) {
          const { bytesWritten } = await fh.write(raw, off, raw.length - off, o + off);
          off += bytesWritten;
        }
      }
      st.written = o + raw.length;
      this.#bytesDone += raw.length;
      this.#unackedBytes += raw.length;
      this.#current = { label: item.label, bytes: st.written, size: item.end };
      this.#o.onProgress?.(f, st.written, false);
      if (last) await this.#complete(f, item, st);
      else this.#maybeGrant();
    }).catch((err: unknown) => this.#fail(fileError(err, item.label)));
  }

  /** Fails the transfer from outside (the call failed, the peer went away). */
  fail(error: SwarmnetError): void {
    this.#fail(error);
  }

  /** Stops without answering: handles close, nothing is renamed. */
  cancel(): void {
    if (this.#state !== "running") return;
    this.#state = "cancelled";
    this.#closeAll();
    this.#settle.reject(new AbortedError("file transfer cancelled"));
  }

  /** How many contiguous bytes item `index` has on disk from its offset (for a swarm's resume point). */
  writtenOf(index: number): number {
    return this.#states[index]?.written ?? this.#o.items[index]?.offset ?? 0;
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

  #stateOf(index: number, item: ReceiveItem): ReceiveState {
    let st = this.#states[index];
    if (st) return st;
    const path = item.mode === "whole" ? item.target + PART_SUFFIX : item.target;
    // A whole file from 0 starts a fresh .part; a resumed one or a range writes into what is there.
    // O_NOFOLLOW: a .part planted as a symlink is refused (ELOOP), never written through.
    const flags = item.mode === "whole" && item.offset === 0 ? WRITE_FRESH : WRITE_INTO;
    const handle = open(path, flags);
    handle.catch(() => undefined);
    st = { next: item.offset, written: item.offset, handle, chain: handle.then(() => undefined), skippedZeros: false };
    this.#states[index] = st;
    return st;
  }

  async #complete(index: number, item: ReceiveItem, st: ReceiveState): Promise<void> {
    if (this.#state !== "running") return;
    const fh = await st.handle!;
    st.handle = undefined;
    try {
      if (item.mode === "whole") {
        // Trailing zero chunks were skipped: set the length.
        if (st.skippedZeros) await fh.truncate(item.end);
        // Every byte from offset to end was counted in, in order, into a .part that began
        // truncated: that is the size check. A resumed .part could hold more than its prefix: stat it.
        if (item.offset > 0) {
          const { size } = await fh.stat();
          if (size !== item.end) throw new FileIntegrityError(`${JSON.stringify(item.label)} is ${size} bytes after the transfer, ${item.end} expected`);
        }
      }
    } finally {
      await fh.close();
    }
    if (item.mode === "whole") {
      const part = item.target + PART_SUFFIX;
      if (item.sha256 !== undefined) {
        const actual = await sha256File(part);
        if (Buffer.compare(actual, item.sha256) !== 0) {
          await unlink(part).catch(() => undefined);
          throw new FileIntegrityError(`${JSON.stringify(item.label)}: SHA-256 does not match the source; the partial file was removed`);
        }
      }
      if (this.#state !== "running") return;
      await rename(part, item.target);
    }
    this.#filesDone++;
    // The sender counts only files it sends bytes for: so does the credit.
    if (item.end > item.offset) this.#unackedFiles++;
    this.#current = { label: item.label, bytes: item.end, size: item.end };
    this.#o.onProgress?.(index, item.end, true);
    this.#remaining--;
    if (this.#remaining === 0) this.#finish();
    else this.#maybeGrant();
  }

  #maybeGrant(): void {
    if (this.#unackedBytes >= Math.max(1, this.#o.windowBytes / 4) || this.#unackedFiles >= Math.max(1, Math.floor(this.#o.windowFiles / 4))) {
      this.#o.grant(this.#unackedBytes, this.#unackedFiles);
      this.#unackedBytes = 0;
      this.#unackedFiles = 0;
    }
  }

  #finish(): void {
    if (this.#state !== "running") return;
    this.#state = "done";
    this.#settle.resolve({ files: this.#filesDone, bytes: this.#bytesDone });
  }

  #fail(error: SwarmnetError): void {
    if (this.#state !== "running") return;
    this.#state = "failed";
    this.#closeAll();
    this.#settle.reject(error);
  }

  #closeAll(): void {
    for (const st of this.#states) {
      if (!st?.handle) continue;
      const handle = st.handle;
      st.handle = undefined;
      // After the writes already queued, so a .part keeps every byte that reached it (resume).
      void st.chain.then(
        () => handle.then((fh) => fh.close()),
        () => handle.then((fh) => fh.close()),
      ).catch(() => undefined);
    }
  }
}
