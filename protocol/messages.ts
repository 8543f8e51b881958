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
/** The consumer took `items` more items (`bytes` bytes): the window slides by that much. */
export interface StreamCreditMessage {
  readonly type: "stream.credit";
  readonly id: number;
  readonly items: number;
  readonly bytes: number;
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

export type ClientMessage =
  | HelloMessage
  | PingMessage
  | CallMessage
  | CancelMessage
  | StreamOpenMessage
  | StreamCreditMessage
  | StreamAbortMessage
  | HeartbeatMessage
  | SessionCloseMessage
  | GatewayCloseMessage;

// ---- gateway -> client ------------------------------------------------------

export interface WelcomeMessage {
  readonly type: "welcome";
  readonly id: number;
  readonly status: typeof Status.OK;
  readonly handlerId: number;
  readonly v: number;
  /** The gateway ends a session silent for this long; clients heartbeat well within it. */
  readonly livenessMs: number;
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
}
export interface GatewayClosingMessage {
  readonly type: "gateway.closing";
  readonly id: number;
}

export type GatewayMessage =
  | WelcomeMessage
  | RefusedMessage
  | PongMessage
  | ResultMessage
  | ErrorMessage
  | StreamItemsMessage
  | StreamEndMessage
  | SessionClosedMessage
  | SessionEndedMessage
  | GatewayClosingMessage;

export type Message = ClientMessage | GatewayMessage;
export type MessageType = Message["type"];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

// ---- validation -------------------------------------------------------------

const MAX_ID = 0xffff_ffff;
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

function callArgs(m: Record<string, unknown>): { args: unknown[]; kwargs: Kwargs } {
  const args = m["args"] ?? [];
  if (!Array.isArray(args)) throw new ProtocolError(`${String(m["type"])} 'args' must be an array`);
  const kwargs = m["kwargs"] ?? {};
  if (!isRecord(kwargs)) throw new ProtocolError(`${String(m["type"])} 'kwargs' must be a map`);
  return { args, kwargs };
}

function str(m: Record<string, unknown>, field: string, max = MAX_NAME_LENGTH): string {
  const v = m[field];
  if (typeof v !== "string" || v.length === 0 || v.length > max) {
    throw new ProtocolError(`field '${field}' must be a non-empty string of at most ${max} characters`);
  }
  return v;
}

/**
 * Validates a decoded envelope from a client. `hasRaw` says whether a raw frame
 * followed the envelope; only a batch send may carry one.
 */
export function parseClientMessage(value: unknown, hasRaw: boolean): ClientMessage {
  if (!isRecord(value)) throw new ProtocolError("envelope must be a CBOR map");
  const type = value["type"];
  const id = requestId(value);
  if (hasRaw && !(type === "rpc.call" && value["mode"] === "send")) {
    throw new ProtocolError(`message '${String(type)}' does not take a raw frame`);
  }
  switch (type) {
    case "hello": {
      const v = value["v"];
      if (typeof v !== "number" || !Number.isInteger(v)) throw new ProtocolError("hello needs an integer 'v'");
      return { type, id, v };
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
    case "stream.credit":
      return { type, id, items: count(value, "items", MAX_STREAM_WINDOW), bytes: count(value, "bytes", Number.MAX_SAFE_INTEGER) };
    case "stream.abort":
      return { type, id };
    case "heartbeat":
      return { type, id: 0 };
    case "rpc.cancel":
    case "session.close":
    case "gateway.close":
      return { type, id };
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
      return { type, id, status: Status.OK, handlerId, v, livenessMs };
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
      return {
        type,
        id,
        code: str(value, "code"),
        message: String(value["message"] ?? ""),
        ...(typeof name === "string" ? { name } : {}),
      };
    }
    case "session.closed":
    case "gateway.closing":
      return { type, id };
    case "session.ended":
      return { type, id: 0, code: str(value, "code"), message: String(value["message"] ?? "") };
    default:
      throw new ProtocolError(`unknown message type '${String(type).slice(0, 64)}'`);
  }
}
