/**
 * The wire protocol: every message is one member of a discriminated union on
 * `type`. A ZeroMQ message is `[envelope]` or `[envelope][raw]`, where the
 * envelope is a CBOR map and `raw` carries bulk bytes untouched (the bytes of
 * a batch send, a bytes result). ROUTER adds the routing id in front.
 *
 * Every inbound envelope goes through `parseClientMessage` /
 * `parseGatewayMessage` before anything looks at it: shape errors become a
 * ProtocolError, never an exception deeper in.
 */
import { ProtocolError, Status } from "./errors.js";
import { MAX_FILES_PER_REQUEST, MAX_PATH_LENGTH } from "./limits.js";

/** Bumped on any incompatible change; a mismatch is refused with 426. */
export const PROTOCOL_VERSION = 1;

export type Kwargs = Record<string, unknown>;

/** Batch get returns bytes or any CBOR value; batch send returns an integer. */
export type CallMode = "get" | "send";

// ---- client -> gateway ------------------------------------------------------

export interface HelloMessage {
  readonly type: "hello";
  readonly id: number;
  readonly v: number;
  /** When the pool is full, wait this long in the gateway's fair queue for a slot instead of a 503. */
  readonly waitMs?: number;
  /** Largest frame this client accepts, in bytes: the gateway refuses a larger answer with MESSAGE_TOO_LARGE instead of sending it. */
  readonly maxMessageSize?: number;
}
export interface PingMessage {
  readonly type: "ping";
  readonly id: number;
  readonly data: unknown;
}
/** `rpc.call`; with mode "send" the raw frame becomes `kwargs.buffer`. */
export interface CallMessage {
  readonly type: "rpc.call";
  readonly id: number;
  readonly name: string;
  readonly mode: CallMode;
  readonly args: readonly unknown[];
  readonly kwargs: Kwargs;
}
/**
 * Opens a stream from a generator subroutine. The client grants a window of
 * `window` items and `windowBytes` bytes; the gateway never pulls the generator
 * beyond what has been granted (initial window plus every `stream.credit`).
 */
export interface StreamOpenMessage {
  readonly type: "stream.open";
  readonly id: number;
  readonly name: string;
  readonly args: readonly unknown[];
  readonly kwargs: Kwargs;
  readonly window: number;
  readonly windowBytes: number;
}
/**
 * The consumer took `items` more items (`bytes` bytes): the window slides by
 * that much. `grow` (optional) widens the item window by that many items on
 * top (a client tuning its window to the link, as TCP's receive window).
 */
export interface StreamCreditMessage {
  readonly type: "stream.credit";
  readonly id: number;
  readonly items: number;
  readonly bytes: number;
  readonly grow?: number;
}
/** The consumer aborts: the generator's return() runs, then `stream.end {aborted: true}`. */
export interface StreamAbortMessage {
  readonly type: "stream.abort";
  readonly id: number;
}
/** Keeps an idle session's lease alive; never answered. */
export interface HeartbeatMessage {
  readonly type: "heartbeat";
  readonly id: 0;
}
/** The caller gave up on call `id` (its deadline passed): the handler drops it and is idle again. */
export interface CancelMessage {
  readonly type: "rpc.cancel";
  readonly id: number;
}
export interface SessionCloseMessage {
  readonly type: "session.close";
  readonly id: number;
}
export interface GatewayCloseMessage {
  readonly type: "gateway.close";
  readonly id: number;
}
/**
 * Asks for the gateway's `snapshot()` (supervisor, pool, handlers). Answered by
 * the dispatcher without a session, so an inspector takes no pool slot and
 * works while the pool is full; only a gateway started with `admin: true`
 * answers it, others reply `error SWARMNET_ADMIN_DISABLED`.
 */
export interface AdminSnapshotMessage {
  readonly type: "admin.snapshot";
  readonly id: number;
}
/** Asks for the gateway's subroutines (`client.listSubroutines()`, `swarmnet list`); answered by the dispatcher, session or not. */
export interface SubroutineListMessage {
  readonly type: "subroutine.list";
  readonly id: number;
}
/**
 * What the web inspector polls: the snapshot plus the actor transitions the
 * gateway recorded after cursor `since` (0: the oldest it still keeps), and
 * with `machines: true` each machine's statechart. Same access rule as
 * `admin.snapshot`; the gateway records transitions only once asked.
 */
export interface AdminWatchMessage {
  readonly type: "admin.watch";
  readonly id: number;
  readonly since: number;
  readonly machines?: true;
}

// ---- file transfer (both directions share file.data and file.credit) ---------

/**
 * Lists files on the gateway: every regular file under `folder` (recursive;
 * paths relative to it, `/`-separated), kept if `regex` matches that relative
 * path; or the given `files` (paths relative to a file root). `hash` asks for
 * each file's SHA-256.
 */
export interface FileListMessage {
  readonly type: "file.list";
  readonly id: number;
  readonly folder?: string;
  readonly regex?: { readonly source: string; readonly flags: string };
  readonly files?: readonly string[];
  readonly hash?: true;
}
/**
 * Asks the gateway to send byte ranges of files: entry `[path, offset, end]`
 * (end exclusive), or `[path, offset, end, size, mtimeMs]` when the file must
 * still be the one listed (a resumed or split file: never spliced from two
 * versions). `path` is relative to `folder` when given, else to a file root;
 * a path may appear in several entries (several ranges). The client (the
 * receiver) grants the initial window; the gateway clamps it to its own caps.
 */
export interface FileGetMessage {
  readonly type: "file.get";
  readonly id: number;
  readonly folder?: string;
  readonly files: ReadonlyArray<readonly [path: string, offset: number, end: number, size?: number, mtimeMs?: number]>;
  readonly chunkBytes: number;
  readonly windowBytes: number;
  readonly windowFiles: number;
}
/**
 * Announces an upload into `downloadDir/dirname`: entry `[name, size]` or
 * `[name, size, mtimeMs, offset, end]` (a single name; the source's mtime,
 * the gateway's journal keeps it; only bytes `[offset, end)` come in this
 * request, the rest in others of the same `group`), optional `sha256` per
 * file (verify). The gateway answers `file.ready` with the ranges it still
 * needs for each file (resume) and its window.
 */
export interface FilePutMessage {
  readonly type: "file.put";
  readonly id: number;
  readonly dirname: string;
  readonly files: ReadonlyArray<readonly [name: string, size: number, mtimeMs?: number, offset?: number, end?: number]>;
  readonly sha256?: readonly Uint8Array[];
  readonly chunkBytes: number;
  /** What the gateway does with a target that exists. @default "overwrite" */
  readonly ifExists?: "overwrite" | "skip" | "rename" | "error";
  /** Requests of one upload (byte ranges of one file over a swarm) share the gateway's `.part`. */
  readonly group?: string;
}
/** Bytes `[o, o + raw.length)` of file number `f` of the transfer; the bytes are the raw frame. */
export interface FileDataMessage {
  readonly type: "file.data";
  readonly id: number;
  readonly f: number;
  readonly o: number;
}
/** The receiver wrote `bytes` more bytes and completed `files` more ranges: the window slides. */
export interface FileCreditMessage {
  readonly type: "file.credit";
  readonly id: number;
  readonly bytes: number;
  readonly files: number;
}
/** File number `f` of the transfer failed on the sender's side (unreadable, changed, ...); the others go on. */
export interface FileErrorMessage {
  readonly type: "file.error";
  readonly id: number;
  readonly f: number;
  readonly code: string;
  readonly message: string;
}

export type ClientMessage =
  | HelloMessage
  | PingMessage
  | CallMessage
  | CancelMessage
  | StreamOpenMessage
  | StreamCreditMessage
  | StreamAbortMessage
  | FileListMessage
  | FileGetMessage
  | FilePutMessage
  | FileDataMessage
  | FileCreditMessage
  | FileErrorMessage
  | HeartbeatMessage
  | SessionCloseMessage
  | GatewayCloseMessage
  | AdminSnapshotMessage
  | SubroutineListMessage
  | AdminWatchMessage;

// ---- gateway -> client ------------------------------------------------------

export interface WelcomeMessage {
  readonly type: "welcome";
  readonly id: number;
  readonly status: typeof Status.OK;
  readonly handlerId: number;
  readonly v: number;
  /** The gateway ends a session silent for this long; clients heartbeat well within it. */
  readonly livenessMs: number;
  /** The session secret (8 bytes): carried in every delivery header, required to resume. */
  readonly secret?: Uint8Array;
  /** This gateway process's instance id: a resume refused by another instance means it restarted. */
  readonly gw?: number;
  /** Largest frame the gateway accepts, in bytes: a client refuses a larger request with MessageTooLargeError instead of sending it. */
  readonly maxMessageSize?: number;
}
export interface RefusedMessage {
  readonly type: "refused";
  readonly id: number;
  readonly status: number;
  readonly code: string;
  readonly message: string;
}
export interface PongMessage {
  readonly type: "pong";
  readonly id: number;
  readonly data: unknown;
}
/** With `raw: true` the value is the raw frame (bytes, not re-encoded). */
export interface ResultMessage {
  readonly type: "rpc.result";
  readonly id: number;
  readonly raw?: true;
  readonly value?: unknown;
}
export interface ErrorMessage {
  readonly type: "error";
  /** 0 when the error is not about one request (e.g. an unparseable frame). */
  readonly id: number;
  readonly code: string;
  readonly message: string;
  /** The remote error's class name, when a subroutine threw. */
  readonly name?: string;
  /** The subroutine's stack, from a gateway started with `remoteStack: true`. */
  readonly stack?: string;
}
/**
 * A batch of stream items. Each entry is `[ident, length]` for bytes (the
 * bytes are the next `length` bytes of the raw frame, in order: no copy
 * inside CBOR) or `[ident, -1, value]` for any other CBOR value.
 */
export interface StreamItemsMessage {
  readonly type: "stream.items";
  readonly id: number;
  readonly items: ReadonlyArray<readonly [number, number] | readonly [number, -1, unknown]>;
}
/** The stream is over: the generator returned or ended it, or (`aborted`) the client asked. */
export interface StreamEndMessage {
  readonly type: "stream.end";
  readonly id: number;
  readonly count: number;
  readonly aborted?: true;
}
/**
 * The answer to `file.list`: `[path, size]` or, with `hash`, `[path, size,
 * sha256]` (the digest of exactly `size` bytes). `mtimes[i]` is file i's
 * mtime in ms (its identity, with the size). `folders` lists the empty
 * folders (relative paths) and `problems` the paths that cannot be sent,
 * `[path, code, message]` each.
 */
export interface FileListingMessage {
  readonly type: "file.listing";
  readonly id: number;
  readonly files: ReadonlyArray<readonly [path: string, size: number, sha256?: Uint8Array]>;
  readonly mtimes?: readonly number[];
  readonly folders?: readonly string[];
  readonly problems?: ReadonlyArray<readonly [path: string, code: string, message: string]>;
}
/**
 * The gateway is ready for an upload: `missing[i]` lists the byte ranges of
 * file i it still needs (fewer than asked when it resumes a `.part`), and
 * `refused` the files it will not take, `[index, code, message]` each
 * (a name its file system cannot hold, a target that exists, ...).
 */
export interface FileReadyMessage {
  readonly type: "file.ready";
  readonly id: number;
  readonly missing: ReadonlyArray<ReadonlyArray<readonly [start: number, end: number]>>;
  /** Where each file's missing bytes begin (for clients that send one tail per file, such as the Python client). */
  readonly offsets?: readonly number[];
  readonly refused?: ReadonlyArray<readonly [index: number, code: string, message: string]>;
  /** Files that land under another name than the one sent (`ifExists: "rename"`): `[index, name]` each. */
  readonly renamed?: ReadonlyArray<readonly [index: number, name: string]>;
  readonly windowBytes: number;
  readonly windowFiles: number;
}
/** A transfer is over: for a download every byte was sent; for an upload every file is in place. */
export interface FileDoneMessage {
  readonly type: "file.done";
  readonly id: number;
  readonly files: number;
  readonly bytes: number;
}
export interface SessionClosedMessage {
  readonly type: "session.closed";
  readonly id: number;
}
/** Unsolicited: the gateway ended this session (budget spent, stopping, ...). */
export interface SessionEndedMessage {
  readonly type: "session.ended";
  readonly id: 0;
  readonly code: string;
  readonly message: string;
  /** Why (`SessionEndReason`: lease, stopped, restarted, crashed, overflow, ...). */
  readonly reason?: string;
}
/**
 * After the delivery header of kind REFUSED: the session a resume (or a
 * message) named is gone or not the sender's. `gw` is the refusing gateway's
 * instance id (another id than the welcome's: the gateway restarted).
 */
export interface LinkRefusedMessage {
  readonly type: "link.refused";
  readonly id: 0;
  readonly code: string;
  readonly message: string;
  readonly reason: string;
  readonly gw: number;
}
export interface GatewayClosingMessage {
  readonly type: "gateway.closing";
  readonly id: number;
}
/** One registered subroutine: its name and whether it streams (a generator function). */
export interface SubroutineInfo {
  readonly name: string;
  readonly stream: boolean;
}
/** The answer to `subroutine.list`, sorted by name. */
export interface SubroutineListingMessage {
  readonly type: "subroutine.listing";
  readonly id: number;
  readonly subroutines: readonly SubroutineInfo[];
}
/** The answer to `admin.snapshot`: what `gateway.snapshot()` returns (a `GatewayInspection`), as a CBOR map. */
export interface AdminSnapshotResultMessage {
  readonly type: "admin.snapshot.result";
  readonly id: number;
  readonly snapshot: Record<string, unknown>;
}
/**
 * The answer to `admin.watch`: `transitions` (`TransitionRecord`s, oldest
 * first) and `next`, the cursor to send as `since` next time; `machines`
 * (`MachineGraph`s by kind) when asked.
 */
export interface AdminWatchResultMessage {
  readonly type: "admin.watch.result";
  readonly id: number;
  readonly snapshot: Record<string, unknown>;
  readonly transitions: readonly unknown[];
  readonly next: number;
  readonly machines?: Record<string, unknown>;
}

export type GatewayMessage =
  | WelcomeMessage
  | RefusedMessage
  | PongMessage
  | ResultMessage
  | ErrorMessage
  | StreamItemsMessage
  | StreamEndMessage
  | FileListingMessage
  | FileReadyMessage
  | FileDataMessage
  | FileCreditMessage
  | FileErrorMessage
  | FileDoneMessage
  | SessionClosedMessage
  | SessionEndedMessage
  | GatewayClosingMessage
  | AdminSnapshotResultMessage
  | SubroutineListingMessage
  | AdminWatchResultMessage;

export type Message = ClientMessage | GatewayMessage;
export type MessageType = Message["type"];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

// ---- validation -------------------------------------------------------------

const MAX_ID = 0xffff_ffff;
/** Longest a hello may wait for a pool slot. */
export const MAX_WAIT_MS = 10 * 60_000;
/** Largest window a client may grant, in items. */
export const MAX_STREAM_WINDOW = 1 << 20;
const MAX_NAME_LENGTH = 256;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function requestId(m: Record<string, unknown>): number {
  const id = m["id"];
  if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > MAX_ID) {
    throw new ProtocolError("message id must be an integer in 0..2^32-1");
  }
  return id;
}

function count(m: Record<string, unknown>, field: string, max: number): number {
  const v = m[field];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    throw new ProtocolError(`field '${field}' must be an integer in 0..${max}`);
  }
  return v;
}

/** Deepest nesting of arrays and maps accepted in args and kwargs. */
export const MAX_ARGS_DEPTH = 32;

function depthExceeds(value: unknown, budget: number): boolean {
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return false;
  if (budget === 0) return true;
  const children = Array.isArray(value) ? value : Object.values(value);
  for (const child of children) if (depthExceeds(child, budget - 1)) return true;
  return false;
}

function callArgs(m: Record<string, unknown>): { args: unknown[]; kwargs: Kwargs } {
  const args = m["args"] ?? [];
  if (!Array.isArray(args)) throw new ProtocolError(`${String(m["type"])} 'args' must be an array`);
  const kwargs = m["kwargs"] ?? {};
  if (!isRecord(kwargs)) throw new ProtocolError(`${String(m["type"])} 'kwargs' must be a map`);
  if (depthExceeds(args, MAX_ARGS_DEPTH) || depthExceeds(kwargs, MAX_ARGS_DEPTH)) {
    throw new ProtocolError(`args and kwargs may nest at most ${MAX_ARGS_DEPTH} levels deep`);
  }
  return { args, kwargs };
}

function str(m: Record<string, unknown>, field: string, max = MAX_NAME_LENGTH): string {
  const v = m[field];
  if (typeof v !== "string" || v.length === 0 || v.length > max) {
    throw new ProtocolError(`field '${field}' must be a non-empty string of at most ${max} characters`);
  }
  return v;
}

function offset(m: Record<string, unknown>, field: string): number {
  return count(m, field, Number.MAX_SAFE_INTEGER);
}

function pathField(value: unknown, what: string): string {
  // Only the shape here; what a path may name is the sandbox's business.
  if (typeof value !== "string" || value.length > MAX_PATH_LENGTH) {
    throw new ProtocolError(`${what} must be a string of at most ${MAX_PATH_LENGTH} characters`);
  }
  return value;
}

function fileArray(m: Record<string, unknown>): unknown[] {
  const files = m["files"];
  if (!Array.isArray(files) || files.length > MAX_FILES_PER_REQUEST) {
    throw new ProtocolError(`${String(m["type"])} 'files' must be an array of at most ${MAX_FILES_PER_REQUEST} entries`);
  }
  return files;
}

function isSafeInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function parseFileData(type: "file.data", id: number, value: Record<string, unknown>, hasRaw: boolean): FileDataMessage {
  if (!hasRaw) throw new ProtocolError("file.data needs its raw frame");
  return { type, id, f: count(value, "f", MAX_FILES_PER_REQUEST), o: offset(value, "o") };
}

function parseFileCredit(type: "file.credit", id: number, value: Record<string, unknown>): FileCreditMessage {
  return { type, id, bytes: offset(value, "bytes"), files: count(value, "files", MAX_FILES_PER_REQUEST) };
}

function parseFileError(type: "file.error", id: number, value: Record<string, unknown>): FileErrorMessage {
  return { type, id, f: count(value, "f", MAX_FILES_PER_REQUEST), code: str(value, "code"), message: String(value["message"] ?? "").slice(0, MAX_PATH_LENGTH * 2) };
}

function isTime(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}

function parseFileList(id: number, value: Record<string, unknown>): FileListMessage {
  const folder = value["folder"];
  const files = value["files"];
  if ((folder === undefined) === (files === undefined)) throw new ProtocolError("file.list needs exactly one of 'folder' and 'files'");
  const hash = value["hash"] === true ? { hash: true as const } : {};
  if (files !== undefined) {
    const list = fileArray(value).map((p, i) => pathField(p, `file.list files[${i}]`));
    return { type: "file.list", id, files: list, ...hash };
  }
  const regex = value["regex"];
  let re: FileListMessage["regex"];
  if (regex !== undefined) {
    if (!isRecord(regex) || typeof regex["source"] !== "string" || typeof regex["flags"] !== "string" || regex["source"].length > MAX_PATH_LENGTH) {
      throw new ProtocolError("file.list 'regex' must be {source, flags} strings");
    }
    re = { source: regex["source"], flags: regex["flags"] };
  }
  return { type: "file.list", id, folder: pathField(folder, "file.list 'folder'"), ...(re ? { regex: re } : {}), ...hash };
}

function windowFields(value: Record<string, unknown>): { chunkBytes: number; windowBytes: number; windowFiles: number } {
  const chunkBytes = offset(value, "chunkBytes");
  const windowBytes = offset(value, "windowBytes");
  const windowFiles = count(value, "windowFiles", MAX_FILES_PER_REQUEST);
  if (chunkBytes < 1 || windowBytes < 1 || windowFiles < 1) throw new ProtocolError("chunk and window must be at least 1");
  return { chunkBytes, windowBytes, windowFiles };
}

function parseFileGet(id: number, value: Record<string, unknown>): FileGetMessage {
  const folder = value["folder"];
  const files = fileArray(value).map((entry, i) => {
    if (!Array.isArray(entry) || (entry.length !== 3 && entry.length !== 5) || !isSafeInt(entry[1]) || !isSafeInt(entry[2]) || entry[1] > entry[2]) {
      throw new ProtocolError(`file.get files[${i}] must be [path, offset, end] or [path, offset, end, size, mtimeMs] with offset <= end`);
    }
    const path = pathField(entry[0], `file.get files[${i}] path`);
    if (entry.length === 3) return [path, entry[1], entry[2]] as const;
    if (!isSafeInt(entry[3]) || !isTime(entry[4])) throw new ProtocolError(`file.get files[${i}] size and mtimeMs must be numbers`);
    return [path, entry[1], entry[2], entry[3], entry[4]] as const;
  });
  return {
    type: "file.get",
    id,
    ...(folder === undefined ? {} : { folder: pathField(folder, "file.get 'folder'") }),
    files,
    ...windowFields(value),
  };
}

function parseFilePut(id: number, value: Record<string, unknown>): FilePutMessage {
  const files = fileArray(value).map((entry, i) => {
    if (!Array.isArray(entry) || (entry.length !== 2 && entry.length !== 5) || !isSafeInt(entry[1])) {
      throw new ProtocolError(`file.put files[${i}] must be [name, size] or [name, size, mtimeMs, offset, end]`);
    }
    const name = pathField(entry[0], `file.put files[${i}] name`);
    if (entry.length === 2) return [name, entry[1]] as const;
    if (!isTime(entry[2]) || !isSafeInt(entry[3]) || !isSafeInt(entry[4]) || entry[3] > entry[4] || entry[4] > entry[1]) {
      throw new ProtocolError(`file.put files[${i}] must have offset <= end <= size`);
    }
    return [name, entry[1], entry[2], entry[3], entry[4]] as const;
  });
  const ifExists = value["ifExists"];
  if (ifExists !== undefined && ifExists !== "overwrite" && ifExists !== "skip" && ifExists !== "rename" && ifExists !== "error") {
    throw new ProtocolError("file.put 'ifExists' must be overwrite, skip, rename or error");
  }
  const group = value["group"];
  if (group !== undefined && (typeof group !== "string" || group.length > 64)) throw new ProtocolError("file.put 'group' must be a short string");
  const sha = value["sha256"];
  let sha256: Uint8Array[] | undefined;
  if (sha !== undefined) {
    if (!Array.isArray(sha) || sha.length !== files.length || !sha.every((h) => h instanceof Uint8Array && h.length === 32)) {
      throw new ProtocolError("file.put 'sha256' must hold one 32-byte digest per file");
    }
    sha256 = sha as Uint8Array[];
  }
  const chunkBytes = offset(value, "chunkBytes");
  if (chunkBytes < 1) throw new ProtocolError("file.put 'chunkBytes' must be at least 1");
  return {
    type: "file.put",
    id,
    dirname: pathField(value["dirname"], "file.put 'dirname'"),
    files,
    ...(sha256 ? { sha256 } : {}),
    chunkBytes,
    ...(ifExists !== undefined ? { ifExists } : {}),
    ...(group !== undefined ? { group } : {}),
  };
}

/**
 * Validates a decoded envelope from a client. `hasRaw` says whether a raw frame
 * followed the envelope; only a batch send may carry one.
 */
export function parseClientMessage(value: unknown, hasRaw: boolean): ClientMessage {
  if (!isRecord(value)) throw new ProtocolError("envelope must be a CBOR map");
  const type = value["type"];
  const id = requestId(value);
  if (hasRaw && !(type === "rpc.call" && value["mode"] === "send") && type !== "file.data") {
    throw new ProtocolError(`message '${String(type)}' does not take a raw frame`);
  }
  switch (type) {
    case "hello": {
      const v = value["v"];
      if (typeof v !== "number" || !Number.isInteger(v)) throw new ProtocolError("hello needs an integer 'v'");
      return {
        type,
        id,
        v,
        ...(value["waitMs"] === undefined ? {} : { waitMs: count(value, "waitMs", MAX_WAIT_MS) }),
        ...(value["maxMessageSize"] === undefined ? {} : { maxMessageSize: count(value, "maxMessageSize", Number.MAX_SAFE_INTEGER) }),
      };
    }
    case "ping":
      return { type, id, data: value["data"] };
    case "rpc.call": {
      const name = str(value, "name");
      const mode = value["mode"];
      if (mode !== "get" && mode !== "send") throw new ProtocolError("rpc.call 'mode' must be 'get' or 'send'");
      const { args, kwargs } = callArgs(value);
      if (mode === "send" && !hasRaw) throw new ProtocolError("a batch send needs its raw frame");
      return { type, id, name, mode, args, kwargs };
    }
    case "stream.open": {
      const name = str(value, "name");
      const { args, kwargs } = callArgs(value);
      const window = count(value, "window", MAX_STREAM_WINDOW);
      const windowBytes = count(value, "windowBytes", Number.MAX_SAFE_INTEGER);
      if (window < 1 || windowBytes < 1) throw new ProtocolError("stream.open needs a window of at least 1 item and 1 byte");
      return { type, id, name, args, kwargs, window, windowBytes };
    }
    case "stream.credit": {
      const credit = { type, id, items: count(value, "items", MAX_STREAM_WINDOW), bytes: count(value, "bytes", Number.MAX_SAFE_INTEGER) } as const;
      return value["grow"] === undefined ? credit : { ...credit, grow: count(value, "grow", MAX_STREAM_WINDOW) };
    }
    case "stream.abort":
      return { type, id };
    case "file.list":
      return parseFileList(id, value);
    case "file.get":
      return parseFileGet(id, value);
    case "file.put":
      return parseFilePut(id, value);
    case "file.data":
      return parseFileData(type, id, value, hasRaw);
    case "file.credit":
      return parseFileCredit(type, id, value);
    case "file.error":
      return parseFileError(type, id, value);
    case "heartbeat":
      return { type, id: 0 };
    case "rpc.cancel":
    case "session.close":
    case "gateway.close":
    case "admin.snapshot":
    case "subroutine.list":
      return { type, id };
    case "admin.watch":
      return { type, id, since: offset(value, "since"), ...(value["machines"] === true ? { machines: true as const } : {}) };
    default:
      throw new ProtocolError(`unknown message type '${String(type).slice(0, 64)}'`);
  }
}

/** Validates a decoded envelope from the gateway. */
export function parseGatewayMessage(value: unknown, hasRaw: boolean): GatewayMessage {
  if (!isRecord(value)) throw new ProtocolError("envelope must be a CBOR map");
  const type = value["type"];
  const id = requestId(value);
  switch (type) {
    case "welcome": {
      const handlerId = value["handlerId"];
      const v = value["v"];
      const livenessMs = value["livenessMs"];
      if (typeof handlerId !== "number" || typeof v !== "number" || typeof livenessMs !== "number") {
        throw new ProtocolError("bad welcome");
      }
      const secret = value["secret"];
      const gw = value["gw"];
      const maxMessageSize = value["maxMessageSize"] === undefined ? undefined : count(value, "maxMessageSize", Number.MAX_SAFE_INTEGER);
      return {
        type,
        id,
        status: Status.OK,
        handlerId,
        v,
        livenessMs,
        ...(maxMessageSize === undefined ? {} : { maxMessageSize }),
        ...(secret instanceof Uint8Array ? { secret } : {}),
        ...(typeof gw === "number" ? { gw } : {}),
      };
    }
    case "stream.items": {
      const items = value["items"];
      if (!Array.isArray(items) || items.length === 0) throw new ProtocolError("stream.items needs a non-empty 'items' array");
      let rawBytes = 0;
      for (const item of items) {
        if (!Array.isArray(item) || typeof item[0] !== "number" || typeof item[1] !== "number") {
          throw new ProtocolError("stream.items entries must be [ident, length] or [ident, -1, value]");
        }
        if (item[1] >= 0) rawBytes += item[1];
      }
      if (rawBytes > 0 && !hasRaw) throw new ProtocolError("stream.items announced bytes but has no raw frame");
      return { type, id, items: items as StreamItemsMessage["items"] };
    }
    case "file.data":
      return parseFileData(type, id, value, hasRaw);
    case "file.credit":
      return parseFileCredit(type, id, value);
    case "file.error":
      return parseFileError(type, id, value);
    case "file.listing": {
      const files = fileArray(value).map((entry, i) => {
        if (!Array.isArray(entry) || (entry.length !== 2 && entry.length !== 3) || !isSafeInt(entry[1])) {
          throw new ProtocolError(`file.listing files[${i}] must be [path, size] or [path, size, sha256]`);
        }
        const path = pathField(entry[0], `file.listing files[${i}] path`);
        if (entry.length === 3 && !(entry[2] instanceof Uint8Array)) throw new ProtocolError(`file.listing files[${i}] sha256 must be bytes`);
        return (entry.length === 3 ? [path, entry[1], entry[2] as Uint8Array] : [path, entry[1]]) as readonly [string, number, Uint8Array?];
      });
      const mtimes = value["mtimes"];
      if (mtimes !== undefined && (!Array.isArray(mtimes) || mtimes.length !== files.length || !mtimes.every(isTime))) {
        throw new ProtocolError("file.listing 'mtimes' must hold one time per file");
      }
      const folders = value["folders"];
      if (folders !== undefined && (!Array.isArray(folders) || folders.length > MAX_FILES_PER_REQUEST)) throw new ProtocolError("file.listing 'folders' must be an array of paths");
      const problems = value["problems"];
      if (problems !== undefined && (!Array.isArray(problems) || problems.length > MAX_FILES_PER_REQUEST)) throw new ProtocolError("file.listing 'problems' must be an array");
      return {
        type,
        id,
        files,
        ...(mtimes !== undefined ? { mtimes: mtimes as number[] } : {}),
        ...(folders !== undefined ? { folders: folders.map((p, i) => pathField(p, `file.listing folders[${i}]`)) } : {}),
        ...(problems !== undefined
          ? {
              problems: problems.map((p, i) => {
                if (!Array.isArray(p) || p.length !== 3 || typeof p[1] !== "string" || typeof p[2] !== "string") {
                  throw new ProtocolError(`file.listing problems[${i}] must be [path, code, message]`);
                }
                return [pathField(p[0], `file.listing problems[${i}] path`), p[1], p[2]] as const;
              }),
            }
          : {}),
      };
    }
    case "file.ready": {
      const missing = value["missing"];
      if (!Array.isArray(missing) || missing.length > MAX_FILES_PER_REQUEST) throw new ProtocolError("file.ready 'missing' must be an array per file");
      const ranges = missing.map((list, i) => {
        if (!Array.isArray(list)) throw new ProtocolError(`file.ready missing[${i}] must be an array of ranges`);
        return list.map((r) => {
          if (!Array.isArray(r) || r.length !== 2 || !isSafeInt(r[0]) || !isSafeInt(r[1]) || r[0] >= r[1]) {
            throw new ProtocolError(`file.ready missing[${i}] must hold [start, end] ranges`);
          }
          return [r[0], r[1]] as const;
        });
      });
      const refused = value["refused"];
      if (refused !== undefined && (!Array.isArray(refused) || !refused.every((r) => Array.isArray(r) && r.length === 3 && isSafeInt(r[0]) && typeof r[1] === "string" && typeof r[2] === "string"))) {
        throw new ProtocolError("file.ready 'refused' must hold [index, code, message] entries");
      }
      const renamed = value["renamed"];
      if (renamed !== undefined && (!Array.isArray(renamed) || !renamed.every((r) => Array.isArray(r) && r.length === 2 && isSafeInt(r[0]) && typeof r[1] === "string"))) {
        throw new ProtocolError("file.ready 'renamed' must hold [index, name] entries");
      }
      return {
        type,
        id,
        missing: ranges,
        ...(refused !== undefined ? { refused: refused as Array<[number, string, string]> } : {}),
        ...(renamed !== undefined ? { renamed: renamed as Array<[number, string]> } : {}),
        windowBytes: offset(value, "windowBytes"),
        windowFiles: count(value, "windowFiles", MAX_FILES_PER_REQUEST),
      };
    }
    case "file.done":
      return { type, id, files: count(value, "files", MAX_FILES_PER_REQUEST), bytes: offset(value, "bytes") };
    case "stream.end": {
      const n = value["count"];
      return { type, id, count: typeof n === "number" ? n : 0, ...(value["aborted"] === true ? { aborted: true as const } : {}) };
    }
    case "refused": {
      const status = value["status"];
      if (typeof status !== "number") throw new ProtocolError("refused needs a numeric status");
      return { type, id, status, code: str(value, "code"), message: String(value["message"] ?? "") };
    }
    case "pong":
      return { type, id, data: value["data"] };
    case "rpc.result":
      if (value["raw"] === true) {
        if (!hasRaw) throw new ProtocolError("rpc.result announced a raw frame that is missing");
        return { type, id, raw: true };
      }
      return { type, id, value: value["value"] };
    case "error": {
      const name = value["name"];
      const stack = value["stack"];
      return {
        type,
        id,
        code: str(value, "code"),
        message: String(value["message"] ?? ""),
        ...(typeof name === "string" ? { name } : {}),
        ...(typeof stack === "string" ? { stack } : {}),
      };
    }
    case "session.closed":
    case "gateway.closing":
      return { type, id };
    case "session.ended": {
      const reason = value["reason"];
      return { type, id: 0, code: str(value, "code"), message: String(value["message"] ?? ""), ...(typeof reason === "string" ? { reason } : {}) };
    }
    case "admin.snapshot.result": {
      const snapshot = value["snapshot"];
      if (!isRecord(snapshot)) throw new ProtocolError("admin.snapshot.result needs a 'snapshot' map");
      return { type, id, snapshot };
    }
    case "subroutine.listing": {
      const list = value["subroutines"];
      if (!Array.isArray(list) || !list.every((e) => isRecord(e) && typeof e["name"] === "string" && typeof e["stream"] === "boolean")) {
        throw new ProtocolError("subroutine.listing needs 'subroutines': [{name, stream}]");
      }
      return { type, id, subroutines: (list as Record<string, unknown>[]).map((e) => ({ name: e["name"] as string, stream: e["stream"] as boolean })) };
    }
    case "admin.watch.result": {
      const { snapshot, transitions, next, machines } = value;
      if (!isRecord(snapshot) || !Array.isArray(transitions) || !isSafeInt(next) || (machines !== undefined && !isRecord(machines))) {
        throw new ProtocolError("admin.watch.result needs 'snapshot', 'transitions' and 'next'");
      }
      return { type, id, snapshot, transitions, next, ...(machines !== undefined ? { machines } : {}) };
    }
    default:
      throw new ProtocolError(`unknown message type '${String(type).slice(0, 64)}'`);
  }
}
