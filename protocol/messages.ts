/**
 * The wire protocol: every message is one member of a discriminated union on
 * `type`. A ZeroMQ message is `[envelope]` or `[envelope][raw]`, where the
 * envelope is a CBOR map and `raw` carries bulk bytes untouched (the bytes of
 * a batch send, a bytes result). ROUTER adds the routing id in front.
 *
 * `MESSAGES` below is the one source of truth: per kind its direction, its
 * fields (each with its check, optional or not) and its raw-frame rule. The
 * message types (`ClientMessage`, `GatewayMessage`, `MessageOf`, `PingMessage`,
 * ...), the validation (`parseClientMessage` / `parseGatewayMessage`) and the
 * builder of error replies (`errorReply`) all derive from it: adding a kind is one
 * entry here. Every inbound envelope goes through a parser before anything
 * looks at it: shape errors become a ProtocolError naming the kind and the
 * field, never an exception deeper in.
 */
import { ProtocolError, Status } from "./errors.js";
import { MAX_FILES_PER_REQUEST, MAX_PATH_LENGTH } from "./limits.js";

/** Bumped on any incompatible change; a mismatch is refused with 426. */
export const PROTOCOL_VERSION = 1;

export type Kwargs = Record<string, unknown>;

/** Batch get returns bytes or any CBOR value; batch send returns an integer. */
export type CallMode = "get" | "send";

const MAX_ID = 0xffff_ffff;
/** Longest a hello may wait for a pool slot. */
export const MAX_WAIT_MS = 10 * 60_000;
/** Largest window a client may grant, in items. */
export const MAX_STREAM_WINDOW = 1 << 20;
/** Deepest nesting of arrays and maps accepted in args and kwargs. */
export const MAX_ARGS_DEPTH = 32;
const MAX_NAME_LENGTH = 256;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

// ---- the field DSL ------------------------------------------------------------

/** What an absent field means: a ProtocolError, an omitted optional field, or a default value. */
type Missing = "error" | "omit" | "default";

/**
 * One field of a message kind. `check` gets the field's value (present, or
 * `undefined` for a required field) and `where` (`"kind 'field'"`, for error
 * messages), and returns the value the message carries or throws ProtocolError;
 * an optional field's check may return `undefined` to drop a value it ignores.
 */
export interface Field<T, M extends Missing = Missing> {
  readonly missing: M;
  readonly check: (value: unknown, where: string) => T | undefined;
  /** The value of an absent field with `missing: "default"`. */
  readonly fallback?: T;
  /** A valid value: the table-driven tests build an envelope of each kind from these. */
  readonly example: unknown;
  /** A value of the wrong type, which `check` refuses; absent for a field that takes anything. */
  readonly wrong?: unknown;
}

function fail(message: string): never {
  throw new ProtocolError(message);
}

function field<T>(check: (value: unknown, where: string) => T, example: unknown, wrong?: unknown): Field<T, "error"> {
  return wrong === undefined ? { missing: "error", check, example } : { missing: "error", check, example, wrong };
}
/** Absent: the message has no such key. */
function optional<T>(f: Field<T, "error">): Field<T, "omit"> {
  return { ...f, missing: "omit" };
}
/** Absent: the message carries `fallback`. */
function withDefault<T>(f: Field<T, "error">, fallback: T): Field<T, "default"> {
  return { ...f, missing: "default", fallback };
}
/** Kept when `guard` holds, silently dropped otherwise (fields a peer may fill loosely). */
function loose<T>(guard: (value: unknown) => value is T, example: T): Field<T, "omit"> {
  return { missing: "omit", check: (v) => (guard(v) ? v : undefined), example };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}
function isSafeInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}
function isTime(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}
const isString = (v: unknown): v is string => typeof v === "string";
const isNumber = (v: unknown): v is number => typeof v === "number";
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

/** An integer in `min..max`. */
function int(min: number, max: number): Field<number, "error"> {
  return field(
    (v, where) =>
      typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? v : fail(`${where} must be an integer in ${min}..${max}`),
    min,
    "1",
  );
}
/** Any integer. */
const integer = field((v, where) => (typeof v === "number" && Number.isInteger(v) ? v : fail(`${where} must be an integer`)), 1, "1");
/** Any number. */
const number = field((v, where) => (typeof v === "number" ? v : fail(`${where} must be a number`)), 1, "1");
/** A non-empty string of at most `max` characters (names, codes). */
function text(max = MAX_NAME_LENGTH): Field<string, "error"> {
  return field(
    (v, where) =>
      typeof v === "string" && v.length > 0 && v.length <= max
        ? v
        : fail(`${where} must be a non-empty string of at most ${max} characters`),
    "x",
    1,
  );
}
/** Human-readable text: whatever came, as a string (cut at `max`); absent is "". */
function note(max = Infinity): Field<string, "default"> {
  return withDefault(
    field((v) => String(v ?? "").slice(0, max), "text"),
    "",
  );
}
/** A path: a string of at most MAX_PATH_LENGTH characters; what it may name is the sandbox's business. */
function pathOf(value: unknown, where: string): string {
  return typeof value === "string" && value.length <= MAX_PATH_LENGTH
    ? value
    : fail(`${where} must be a string of at most ${MAX_PATH_LENGTH} characters`);
}
const path = field(pathOf, "a", 1);
/** One of the given strings. */
function oneOf<const T extends string>(...values: T[]): Field<T, "error"> {
  return field((v, where) => ((values as unknown[]).includes(v) ? (v as T) : fail(`${where} must be ${values.join(", ")}`)), values[0], 1);
}
/** `true` or absent; any other value counts as absent. */
const flag: Field<true, "omit"> = loose((v): v is true => v === true, true);
const identity = (v: unknown): unknown => v;
/** Any CBOR value, absent included. */
const anything: Field<unknown, "default"> = { missing: "default", check: identity, fallback: undefined, example: "data" };
/** Any CBOR value, or absent. */
const maybe: Field<unknown, "omit"> = { missing: "omit", check: identity, example: "value" };
const map = field((v, where) => (isRecord(v) ? v : fail(`${where} must be a map`)), {}, []);
const array = field((v, where) => (Array.isArray(v) ? (v as readonly unknown[]) : fail(`${where} must be an array`)), [], {});
/** The always-200 status of a welcome. */
const statusOk: Field<typeof Status.OK, "default"> = {
  missing: "default",
  check: () => Status.OK,
  fallback: Status.OK,
  example: Status.OK,
};

function depthExceeds(value: unknown, budget: number): boolean {
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return false;
  if (budget === 0) return true;
  const children = Array.isArray(value) ? value : Object.values(value);
  for (const child of children) if (depthExceeds(child, budget - 1)) return true;
  return false;
}
function shallow<T>(value: T, where: string): T {
  return depthExceeds(value, MAX_ARGS_DEPTH) ? fail(`${where} may nest at most ${MAX_ARGS_DEPTH} levels deep`) : value;
}
// A null args or kwargs (a Python client's None) means the default, as an absent one does.
const args = withDefault(
  field(
    (v, where) => (v === null ? [] : shallow(Array.isArray(v) ? (v as readonly unknown[]) : fail(`${where} must be an array`), where)),
    [1],
    {},
  ),
  [] as readonly unknown[],
);
const kwargs = withDefault(
  field((v, where) => (v === null ? {} : shallow(isRecord(v) ? (v as Kwargs) : fail(`${where} must be a map`), where)), { a: 1 }, []),
  {} as Kwargs,
);

/** An array of at most MAX_FILES_PER_REQUEST entries, each checked by `entry(value, "where[i]")`. */
function list<T>(entry: (value: unknown, where: string) => T, example: unknown): Field<readonly T[], "error"> {
  return field(
    (v, where) => {
      if (!Array.isArray(v) || v.length > MAX_FILES_PER_REQUEST)
        fail(`${where} must be an array of at most ${MAX_FILES_PER_REQUEST} entries`);
      return v.map((e, i) => entry(e, `${where}[${i}]`));
    },
    [example],
    {},
  );
}

// ---- the message table ---------------------------------------------------------

/** Who sends a kind: the client, the gateway, both (file transfer), or the gateway after a REFUSED header only. */
export type Direction = "client" | "gateway" | "both" | "refusal";

type Fields = Record<string, Field<unknown>>;

/** One kind of the table. */
export interface Kind<D extends Direction = Direction, F extends Fields = Fields, Z extends boolean = boolean> {
  readonly dir: D;
  readonly fields: F;
  /** The id is always 0 (not tied to a request). */
  readonly zeroId: Z;
  /** "required": the kind always comes with a raw frame; "allowed": `check` decides. Else a client may send none. */
  readonly raw?: "required" | "allowed";
  /** Rules across fields and the raw frame, run on the checked message. */
  readonly check?: (m: Record<string, unknown>, hasRaw: boolean) => void;
  /** A whole valid envelope (without type and id) where the fields' examples do not fit together. */
  readonly example?: Record<string, unknown>;
}

type Options<F extends Fields, Z extends boolean> = {
  readonly zeroId?: Z;
  readonly raw?: "required" | "allowed";
  readonly check?: (m: Out<F>, hasRaw: boolean) => void;
  readonly example?: Record<string, unknown>;
};
function kind<const D extends Direction, const F extends Fields, const Z extends boolean = false>(
  dir: D,
  fields: F,
  options: Options<F, Z> = {},
): Kind<D, F, Z> {
  return { dir, fields, zeroId: (options.zeroId ?? false) as Z, ...(options as Omit<Options<F, Z>, "check">) } as Kind<D, F, Z>;
}

type ValueOf<F> = F extends Field<infer T> ? T : never;
type Out<F extends Fields> = {
  readonly [K in keyof F as F[K] extends Field<unknown, "omit"> ? never : K]: ValueOf<F[K]>;
} & {
  readonly [K in keyof F as F[K] extends Field<unknown, "omit"> ? K : never]?: ValueOf<F[K]>;
};

/** A path list entry of file.get: `[path, offset, end]` or `[path, offset, end, size, mtimeMs]`. */
type RangeEntry = readonly [path: string, offset: number, end: number, size?: number, mtimeMs?: number];
/** An entry of file.put: `[name, size]` or `[name, size, mtimeMs, offset, end]`. */
type UploadEntry = readonly [name: string, size: number, mtimeMs?: number, offset?: number, end?: number];
/** One registered subroutine: its name and whether it streams (a generator function). */
export interface SubroutineInfo {
  readonly name: string;
  readonly stream: boolean;
}
type StreamItem = readonly [number, number] | readonly [number, -1, unknown];

/**
 * Every wire message kind. Field docs are the protocol's; PROTOCOL.md section 5
 * lists the same kinds (a test compares the two).
 */
export const MESSAGES = {
  // ---- client -> gateway ----
  hello: kind("client", {
    v: integer,
    /** When the pool is full, wait this long (ms) in the gateway's fair queue for a slot instead of a 503. */
    waitMs: optional(int(0, MAX_WAIT_MS)),
    /** Largest frame this client accepts, in bytes: the gateway refuses a larger answer with MESSAGE_TOO_LARGE instead of sending it. */
    maxMessageSize: optional(int(0, MAX_SAFE)),
  }),
  ping: kind("client", { data: anything }),
  /** With mode "send" the raw frame becomes `kwargs.buffer`. */
  "rpc.call": kind(
    "client",
    { name: text(), mode: oneOf<CallMode>("get", "send"), args, kwargs },
    {
      raw: "allowed",
      check: (m, hasRaw) => {
        if (hasRaw && m.mode !== "send") fail("message 'rpc.call' does not take a raw frame");
        if (m.mode === "send" && !hasRaw) fail("a batch send needs its raw frame");
      },
    },
  ),
  /** The caller gave up on call `id` (its deadline passed): the handler drops it and is idle again. */
  "rpc.cancel": kind("client", {}),
  /**
   * Opens a stream from a generator subroutine. The client grants a window of
   * `window` items and `windowBytes` bytes; the gateway never pulls the generator
   * beyond what has been granted (initial window plus every `stream.credit`).
   */
  "stream.open": kind("client", { name: text(), args, kwargs, window: int(1, MAX_STREAM_WINDOW), windowBytes: int(1, MAX_SAFE) }),
  /**
   * The consumer took `items` more items (`bytes` bytes): the window slides by
   * that much. `grow` (optional) widens the item window by that many items on
   * top (a client tuning its window to the link, as TCP's receive window).
   */
  "stream.credit": kind("client", { items: int(0, MAX_STREAM_WINDOW), bytes: int(0, MAX_SAFE), grow: optional(int(0, MAX_STREAM_WINDOW)) }),
  /** The consumer aborts: the generator's return() runs, then `stream.end {aborted: true}`. */
  "stream.abort": kind("client", {}),
  /**
   * Lists files on the gateway: every regular file under `folder` (recursive;
   * paths relative to it, `/`-separated), kept if `regex` matches that relative
   * path; or the given `files` (paths relative to a file root). `hash` asks for
   * each file's SHA-256.
   */
  "file.list": kind(
    "client",
    {
      folder: optional(path),
      regex: optional(
        field(
          (v, where): { readonly source: string; readonly flags: string } =>
            isRecord(v) && typeof v["source"] === "string" && typeof v["flags"] === "string" && v["source"].length <= MAX_PATH_LENGTH
              ? { source: v["source"], flags: v["flags"] }
              : fail(`${where} must be {source, flags} strings`),
          { source: ".", flags: "" },
          ".",
        ),
      ),
      files: optional(list(pathOf, "a")),
      hash: flag,
    },
    {
      check: (m) => {
        if ((m.folder === undefined) === (m.files === undefined)) fail("file.list needs exactly one of 'folder' and 'files'");
      },
      example: { folder: "logs", regex: { source: ".", flags: "" } },
    },
  ),
  /**
   * Asks the gateway to send byte ranges of files: entry `[path, offset, end]`
   * (end exclusive), or `[path, offset, end, size, mtimeMs]` when the file must
   * still be the one listed (a resumed or split file: never spliced from two
   * versions). `path` is relative to `folder` when given, else to a file root;
   * a path may appear in several entries (several ranges). The client (the
   * receiver) grants the initial window; the gateway clamps it to its own caps.
   */
  "file.get": kind("client", {
    folder: optional(path),
    files: list(
      (e, where): RangeEntry => {
        if (!Array.isArray(e) || (e.length !== 3 && e.length !== 5) || !isSafeInt(e[1]) || !isSafeInt(e[2]) || e[1] > e[2]) {
          fail(`${where} must be [path, offset, end] or [path, offset, end, size, mtimeMs] with offset <= end`);
        }
        const p = pathOf(e[0], `${where} path`);
        if (e.length === 3) return [p, e[1], e[2]];
        if (!isSafeInt(e[3]) || !isTime(e[4])) fail(`${where} size and mtimeMs must be numbers`);
        return [p, e[1], e[2], e[3], e[4]];
      },
      ["a", 0, 1],
    ),
    chunkBytes: int(1, MAX_SAFE),
    windowBytes: int(1, MAX_SAFE),
    windowFiles: int(1, MAX_FILES_PER_REQUEST),
  }),
  /**
   * Announces an upload into `downloadDir/dirname`: entry `[name, size]` or
   * `[name, size, mtimeMs, offset, end]` (a single name; the source's mtime,
   * the gateway's journal keeps it; only bytes `[offset, end)` come in this
   * request, the rest in others of the same `group`), optional `sha256` per
   * file (verify). The gateway answers `file.ready` with the ranges it still
   * needs for each file (resume) and its window.
   */
  "file.put": kind(
    "client",
    {
      dirname: path,
      files: list(
        (e, where): UploadEntry => {
          if (!Array.isArray(e) || (e.length !== 2 && e.length !== 5) || !isSafeInt(e[1]))
            fail(`${where} must be [name, size] or [name, size, mtimeMs, offset, end]`);
          const name = pathOf(e[0], `${where} name`);
          if (e.length === 2) return [name, e[1]];
          if (!isTime(e[2]) || !isSafeInt(e[3]) || !isSafeInt(e[4]) || e[3] > e[4] || e[4] > e[1])
            fail(`${where} must have offset <= end <= size`);
          return [name, e[1], e[2], e[3], e[4]];
        },
        ["a", 1],
      ),
      sha256: optional(
        field(
          (v, where) =>
            Array.isArray(v) && v.every((h) => h instanceof Uint8Array && h.length === 32)
              ? (v as readonly Uint8Array[])
              : fail(`${where} must hold one 32-byte digest per file`),
          [new Uint8Array(32)],
          [1],
        ),
      ),
      chunkBytes: int(1, MAX_SAFE),
      /** What the gateway does with a target that exists. @default "overwrite" */
      ifExists: optional(oneOf("overwrite", "skip", "rename", "error")),
      /** Requests of one upload (byte ranges of one file over a swarm) share the gateway's `.part`. */
      group: optional(field((v, where) => (typeof v === "string" && v.length <= 64 ? v : fail(`${where} must be a short string`)), "g", 1)),
    },
    {
      check: (m) => {
        if (m.sha256 !== undefined && m.sha256.length !== m.files.length) fail("file.put 'sha256' must hold one 32-byte digest per file");
      },
    },
  ),
  /** Keeps an idle session's lease alive; never answered. */
  heartbeat: kind("client", {}, { zeroId: true }),
  "session.close": kind("client", {}),
  "gateway.close": kind("client", {}),
  /**
   * Asks for the gateway's `snapshot()` (supervisor, pool, handlers). Answered by
   * the dispatcher without a session, so an inspector takes no pool slot and
   * works while the pool is full; only a gateway started with `admin: true`
   * answers it, others reply `error SWARMNET_ADMIN_DISABLED`.
   */
  "admin.snapshot": kind("client", {}),
  /** Asks for the gateway's subroutines (`client.listSubroutines()`, `swarmnet list`); answered by the dispatcher, session or not. */
  "subroutine.list": kind("client", {}),
  /**
   * What the web inspector polls: the snapshot plus the actor transitions the
   * gateway recorded after cursor `since` (0: the oldest it still keeps), and
   * with `machines: true` each machine's statechart. Same access rule as
   * `admin.snapshot`; the gateway records transitions only once asked.
   */
  "admin.watch": kind("client", { since: int(0, MAX_SAFE), machines: flag }),

  // ---- file transfer, both directions ----
  /** Bytes `[o, o + raw.length)` of file number `f` of the transfer; the bytes are the raw frame. */
  "file.data": kind("both", { f: int(0, MAX_FILES_PER_REQUEST), o: int(0, MAX_SAFE) }, { raw: "required" }),
  /** The receiver wrote `bytes` more bytes and completed `files` more ranges: the window slides. */
  "file.credit": kind("both", { bytes: int(0, MAX_SAFE), files: int(0, MAX_FILES_PER_REQUEST) }),
  /** File number `f` of the transfer failed on the sender's side (unreadable, changed, ...); the others go on. */
  "file.error": kind("both", { f: int(0, MAX_FILES_PER_REQUEST), code: text(), message: note(MAX_PATH_LENGTH * 2) }),

  // ---- gateway -> client ----
  welcome: kind("gateway", {
    status: statusOk,
    handlerId: number,
    v: number,
    /** The gateway ends a session silent for this long; clients heartbeat well within it. */
    livenessMs: number,
    /** Largest frame the gateway accepts, in bytes: a client refuses a larger request with MessageTooLargeError instead of sending it. */
    maxMessageSize: optional(int(0, MAX_SAFE)),
    /** The session secret (8 bytes): carried in every delivery header, required to resume. */
    secret: loose(isBytes, new Uint8Array(8)),
    /** This gateway process's instance id: a resume refused by another instance means it restarted. */
    gw: loose(isNumber, 1),
  }),
  refused: kind("gateway", { status: number, code: text(), message: note() }),
  pong: kind("gateway", { data: anything }),
  /** With `raw: true` the value is the raw frame (bytes, not re-encoded). */
  "rpc.result": kind(
    "gateway",
    { raw: flag, value: maybe },
    {
      check: (m, hasRaw) => {
        if (m.raw === true && !hasRaw) fail("rpc.result announced a raw frame that is missing");
      },
    },
  ),
  error: kind("gateway", {
    code: text(),
    message: note(),
    /** The remote error's class name, when a subroutine threw. */
    name: loose(isString, "TypeError"),
    /** The subroutine's stack, from a gateway started with `remoteStack: true`. */
    stack: loose(isString, "at f"),
  }),
  /**
   * A batch of stream items. Each entry is `[ident, length]` for bytes (the
   * bytes are the next `length` bytes of the raw frame, in order: no copy
   * inside CBOR) or `[ident, -1, value]` for any other CBOR value.
   */
  "stream.items": kind(
    "gateway",
    {
      items: field(
        (v, where) => {
          if (!Array.isArray(v) || v.length === 0) fail(`${where} must be a non-empty array`);
          for (const item of v) {
            if (!Array.isArray(item) || typeof item[0] !== "number" || typeof item[1] !== "number")
              fail(`${where} entries must be [ident, length] or [ident, -1, value]`);
          }
          return v as readonly StreamItem[];
        },
        [[1, -1, "v"]],
        {},
      ),
    },
    {
      check: (m, hasRaw) => {
        if (hasRaw) return;
        for (const item of m.items) if (item[1] > 0) fail("stream.items announced bytes but has no raw frame");
      },
    },
  ),
  /** The stream is over: the generator returned or ended it, or (`aborted`) the client asked. */
  "stream.end": kind("gateway", {
    count: withDefault(
      field((v) => (typeof v === "number" ? v : 0), 1),
      0,
    ),
    aborted: flag,
  }),
  /**
   * The answer to `file.list`: `[path, size]` or, with `hash`, `[path, size,
   * sha256]` (the digest of exactly `size` bytes). `mtimes[i]` is file i's
   * mtime in ms (its identity, with the size). `folders` lists the empty
   * folders (relative paths) and `problems` the paths that cannot be sent,
   * `[path, code, message]` each.
   */
  "file.listing": kind(
    "gateway",
    {
      files: list(
        (e, where): readonly [path: string, size: number, sha256?: Uint8Array] => {
          if (!Array.isArray(e) || (e.length !== 2 && e.length !== 3) || !isSafeInt(e[1]))
            fail(`${where} must be [path, size] or [path, size, sha256]`);
          const p = pathOf(e[0], `${where} path`);
          if (e.length === 2) return [p, e[1]];
          return e[2] instanceof Uint8Array ? [p, e[1], e[2]] : fail(`${where} sha256 must be bytes`);
        },
        ["a", 1],
      ),
      mtimes: optional(
        field(
          (v, where) => (Array.isArray(v) && v.every(isTime) ? (v as readonly number[]) : fail(`${where} must hold one time per file`)),
          [1],
          {},
        ),
      ),
      folders: optional(list(pathOf, "a")),
      problems: optional(
        list(
          (e, where): readonly [path: string, code: string, message: string] => {
            if (!Array.isArray(e) || e.length !== 3 || typeof e[1] !== "string" || typeof e[2] !== "string")
              fail(`${where} must be [path, code, message]`);
            return [pathOf(e[0], `${where} path`), e[1], e[2]];
          },
          ["a", "CODE", "why"],
        ),
      ),
    },
    {
      check: (m) => {
        if (m.mtimes !== undefined && m.mtimes.length !== m.files.length) fail("file.listing 'mtimes' must hold one time per file");
      },
    },
  ),
  /**
   * The gateway is ready for an upload: `missing[i]` lists the byte ranges of
   * file i it still needs (fewer than asked when it resumes a `.part`), and
   * `refused` the files it will not take, `[index, code, message]` each
   * (a name its file system cannot hold, a target that exists, ...).
   */
  "file.ready": kind("gateway", {
    missing: list(
      (ranges, where): ReadonlyArray<readonly [start: number, end: number]> => {
        if (!Array.isArray(ranges)) fail(`${where} must be an array of ranges`);
        return ranges.map((r) =>
          Array.isArray(r) && r.length === 2 && isSafeInt(r[0]) && isSafeInt(r[1]) && r[0] < r[1]
            ? ([r[0], r[1]] as const)
            : fail(`${where} must hold [start, end] ranges`),
        );
      },
      [[0, 1]],
    ),
    /** Where each file's missing bytes begin (for clients that send one tail per file, such as the Python client). */
    offsets: optional(
      field(
        (v, where) => (Array.isArray(v) && v.every(isSafeInt) ? (v as readonly number[]) : fail(`${where} must hold one offset per file`)),
        [0],
        {},
      ),
    ),
    refused: optional(
      field(
        (v, where) =>
          Array.isArray(v) &&
          v.every((r) => Array.isArray(r) && r.length === 3 && isSafeInt(r[0]) && typeof r[1] === "string" && typeof r[2] === "string")
            ? (v as ReadonlyArray<readonly [index: number, code: string, message: string]>)
            : fail(`${where} must hold [index, code, message] entries`),
        [[0, "CODE", "why"]],
        {},
      ),
    ),
    /** Files that land under another name than the one sent (`ifExists: "rename"`): `[index, name]` each. */
    renamed: optional(
      field(
        (v, where) =>
          Array.isArray(v) && v.every((r) => Array.isArray(r) && r.length === 2 && isSafeInt(r[0]) && typeof r[1] === "string")
            ? (v as ReadonlyArray<readonly [index: number, name: string]>)
            : fail(`${where} must hold [index, name] entries`),
        [[0, "b"]],
        {},
      ),
    ),
    windowBytes: int(0, MAX_SAFE),
    windowFiles: int(0, MAX_FILES_PER_REQUEST),
  }),
  /** A transfer is over: for a download every byte was sent; for an upload every file is in place. */
  "file.done": kind("gateway", { files: int(0, MAX_FILES_PER_REQUEST), bytes: int(0, MAX_SAFE) }),
  "session.closed": kind("gateway", {}),
  /** Unsolicited: the gateway ended this session (budget spent, stopping, ...). */
  "session.ended": kind(
    "gateway",
    {
      code: text(),
      message: note(),
      /** Why (`SessionEndReason`: lease, stopped, restarted, crashed, overflow, ...). */
      reason: loose(isString, "lease"),
    },
    { zeroId: true },
  ),
  "gateway.closing": kind("gateway", {}),
  /** The answer to `subroutine.list`, sorted by name. */
  "subroutine.listing": kind("gateway", {
    subroutines: field(
      (v, where): readonly SubroutineInfo[] =>
        Array.isArray(v) && v.every((e) => isRecord(e) && typeof e["name"] === "string" && typeof e["stream"] === "boolean")
          ? (v as Record<string, unknown>[]).map((e) => ({ name: e["name"] as string, stream: e["stream"] as boolean }))
          : fail(`${where} must be [{name, stream}]`),
      [{ name: "f", stream: false }],
      {},
    ),
  }),
  /** The answer to `admin.snapshot`: what `gateway.snapshot()` returns (a `GatewayInspection`), as a CBOR map. */
  "admin.snapshot.result": kind("gateway", { snapshot: map }),
  /**
   * The answer to `admin.watch`: `transitions` (`TransitionRecord`s, oldest
   * first) and `next`, the cursor to send as `since` next time; `machines`
   * (`MachineGraph`s by kind) when asked.
   */
  "admin.watch.result": kind("gateway", { snapshot: map, transitions: array, next: int(0, MAX_SAFE), machines: optional(map) }),
  /**
   * After the delivery header of kind REFUSED: the session a resume (or a
   * message) named is gone or not the sender's. `gw` is the refusing gateway's
   * instance id (another id than the welcome's: the gateway restarted).
   */
  "link.refused": kind("refusal", { code: text(), message: note(), reason: text(), gw: number }, { zeroId: true }),
} as const;

type Table = typeof MESSAGES;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type Built<K extends keyof Table> = Simplify<
  { readonly type: K; readonly id: Table[K]["zeroId"] extends true ? 0 : number } & Out<Table[K]["fields"]>
>;
type KindsFrom<D extends Direction> = { [K in keyof Table]: Table[K]["dir"] extends D ? K : never }[keyof Table];

/** Every kind a client sends (file.data, file.credit and file.error go both ways). */
export type ClientMessage = { [K in KindsFrom<"client" | "both">]: Built<K> }[KindsFrom<"client" | "both">];
/** Every kind the gateway sends in a session or plain (not `link.refused`, which follows a REFUSED header). */
export type GatewayMessage = { [K in KindsFrom<"gateway" | "both">]: Built<K> }[KindsFrom<"gateway" | "both">];
export type Message = ClientMessage | GatewayMessage;
export type MessageType = Message["type"];
export type MessageOf<T extends keyof Table> = Built<T>;

// Names other modules use, one per kind.
export type HelloMessage = MessageOf<"hello">;
export type PingMessage = MessageOf<"ping">;
export type CallMessage = MessageOf<"rpc.call">;
export type CancelMessage = MessageOf<"rpc.cancel">;
export type StreamOpenMessage = MessageOf<"stream.open">;
export type StreamCreditMessage = MessageOf<"stream.credit">;
export type StreamAbortMessage = MessageOf<"stream.abort">;
export type HeartbeatMessage = MessageOf<"heartbeat">;
export type SessionCloseMessage = MessageOf<"session.close">;
export type GatewayCloseMessage = MessageOf<"gateway.close">;
export type AdminSnapshotMessage = MessageOf<"admin.snapshot">;
export type SubroutineListMessage = MessageOf<"subroutine.list">;
export type AdminWatchMessage = MessageOf<"admin.watch">;
export type FileListMessage = MessageOf<"file.list">;
export type FileGetMessage = MessageOf<"file.get">;
export type FilePutMessage = MessageOf<"file.put">;
export type FileDataMessage = MessageOf<"file.data">;
export type FileCreditMessage = MessageOf<"file.credit">;
export type FileErrorMessage = MessageOf<"file.error">;
export type WelcomeMessage = MessageOf<"welcome">;
export type RefusedMessage = MessageOf<"refused">;
export type PongMessage = MessageOf<"pong">;
export type ResultMessage = MessageOf<"rpc.result">;
export type ErrorMessage = MessageOf<"error">;
export type StreamItemsMessage = MessageOf<"stream.items">;
export type StreamEndMessage = MessageOf<"stream.end">;
export type FileListingMessage = MessageOf<"file.listing">;
export type FileReadyMessage = MessageOf<"file.ready">;
export type FileDoneMessage = MessageOf<"file.done">;
export type SessionClosedMessage = MessageOf<"session.closed">;
export type SessionEndedMessage = MessageOf<"session.ended">;
export type LinkRefusedMessage = MessageOf<"link.refused">;
export type GatewayClosingMessage = MessageOf<"gateway.closing">;
export type SubroutineListingMessage = MessageOf<"subroutine.listing">;
export type AdminSnapshotResultMessage = MessageOf<"admin.snapshot.result">;
export type AdminWatchResultMessage = MessageOf<"admin.watch.result">;

// ---- builders -------------------------------------------------------------------

/**
 * The one builder of `error` replies: `{type: "error", id, code, message}` plus
 * `name` (the remote error's class) and `stack` when given.
 * @param id the request the error is about; 0 when it is about no one request (an unparseable frame)
 * @param code a stable `SWARMNET_*` code (`ErrorCode`)
 */
export function errorReply(
  id: number,
  code: string,
  message: string,
  extra?: { readonly name?: string | undefined; readonly stack?: string | undefined },
): ErrorMessage {
  if (extra === undefined) return { type: "error", id, code, message };
  const { name, stack } = extra;
  return { type: "error", id, code, message, ...(name === undefined ? {} : { name }), ...(stack === undefined ? {} : { stack }) };
}

// ---- validation ------------------------------------------------------------------

/** Parses the fields of a known kind (`undefined`: not a kind of this direction); `type` is `value.type`. */
type Parse = (value: Record<string, unknown>, type: unknown, id: number, hasRaw: boolean) => Record<string, unknown> | undefined;

/**
 * Compiles the table's kinds of some directions into one parse function: a
 * `switch` on the kind with one object literal per kind. Its text is made from
 * the table once, at load time (as ajv and fast-json-stringify do), because the
 * hand-written switch this replaced was that fast: a generic loop over each
 * kind's fields, measured with scripts/bench-parse.ts, was 2 to 2.5 times
 * slower on the hot kinds. Kinds and field names enter the text only through
 * JSON.stringify; checks are called from the `specs` array.
 */
function compile(dirs: readonly Direction[]): { parse: Parse; raw: ReadonlyMap<unknown, "required" | "allowed" | undefined> } {
  const specs: Array<Field<unknown>> = [];
  const wheres: string[] = [];
  const checks: Array<Kind["check"]> = [];
  const raw = new Map<unknown, "required" | "allowed" | undefined>();
  const cases: string[] = [];
  for (const [type, entry] of Object.entries(MESSAGES) as Array<[string, Kind]>) {
    if (!dirs.includes(entry.dir)) continue;
    raw.set(type, entry.raw);
    const lines: string[] = [];
    if (entry.raw === "required") lines.push(`if (!hasRaw) fail(${JSON.stringify(`${type} needs its raw frame`)});`);
    const literal = [`type: ${JSON.stringify(type)}`, entry.zeroId ? "id: 0" : "id"];
    const later: string[] = [];
    for (const [name, spec] of Object.entries(entry.fields)) {
      if (name === "type" || name === "id") throw new Error(`message table: ${type} declares '${name}', which every envelope has`);
      const n = specs.push(spec) - 1;
      wheres.push(`${type} '${name}'`);
      const key = JSON.stringify(name);
      const get = `value[${key}]`;
      const call = (v: string): string => (spec.check === identity ? v : `specs[${n}].check(${v}, wheres[${n}])`);
      if (spec.missing === "error") literal.push(`${key}: ${call(get)}`);
      else if (spec.missing === "default") literal.push(`${key}: ${get} === undefined ? specs[${n}].fallback : ${call(get)}`);
      else later.push(`v = ${get}; if (v !== undefined && (v = ${call("v")}) !== undefined) out[${key}] = v;`);
    }
    lines.push(`const out = { ${literal.join(", ")} };`);
    if (later.length > 0) lines.push("let v;", ...later);
    if (entry.check !== undefined) lines.push(`checks[${checks.push(entry.check) - 1}](out, hasRaw);`);
    cases.push(`case ${JSON.stringify(type)}: {\n${lines.join("\n")}\nreturn out;\n}`);
  }
  const body = `return function parse(value, type, id, hasRaw) {\nswitch (type) {\n${cases.join("\n")}\ndefault: return undefined;\n}\n};`;
  const parse = new Function("specs", "wheres", "checks", "fail", body)(specs, wheres, checks, fail) as Parse;
  return { parse, raw };
}
const FROM_CLIENT = compile(["client", "both"]);
const FROM_GATEWAY = compile(["gateway", "both"]);

function requestId(m: Record<string, unknown>): number {
  const id = m["id"];
  if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > MAX_ID) {
    throw new ProtocolError("message id must be an integer in 0..2^32-1");
  }
  return id;
}

/**
 * Validates a decoded envelope from a client against `MESSAGES`. `hasRaw` says
 * whether a raw frame followed the envelope; only kinds that take one may.
 * @throws ProtocolError (`SWARMNET_PROTOCOL`) naming the kind and the field
 */
export function parseClientMessage(value: unknown, hasRaw: boolean): ClientMessage {
  if (!isRecord(value)) throw new ProtocolError("envelope must be a CBOR map");
  const type = value["type"];
  const id = requestId(value);
  if (hasRaw && FROM_CLIENT.raw.get(type) === undefined)
    throw new ProtocolError(`message '${String(type).slice(0, 64)}' does not take a raw frame`);
  const message = FROM_CLIENT.parse(value, type, id, hasRaw);
  if (message === undefined) throw new ProtocolError(`unknown message type '${String(type).slice(0, 64)}'`);
  return message as ClientMessage;
}

/**
 * Validates a decoded envelope from the gateway against `MESSAGES`.
 * @throws ProtocolError (`SWARMNET_PROTOCOL`) naming the kind and the field
 */
export function parseGatewayMessage(value: unknown, hasRaw: boolean): GatewayMessage {
  if (!isRecord(value)) throw new ProtocolError("envelope must be a CBOR map");
  const type = value["type"];
  const id = requestId(value);
  const message = FROM_GATEWAY.parse(value, type, id, hasRaw);
  if (message === undefined) throw new ProtocolError(`unknown message type '${String(type).slice(0, 64)}'`);
  return message as GatewayMessage;
}
