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
  | SessionCloseMessage
  | GatewayCloseMessage;

// ---- gateway -> client ------------------------------------------------------

export interface WelcomeMessage {
  readonly type: "welcome";
  readonly id: number;
  readonly status: typeof Status.OK;
  readonly handlerId: number;
  readonly v: number;
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
  | SessionClosedMessage
  | SessionEndedMessage
  | GatewayClosingMessage;

export type Message = ClientMessage | GatewayMessage;
export type MessageType = Message["type"];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

// ---- validation -------------------------------------------------------------

const MAX_ID = 0xffff_ffff;
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
      const args = value["args"] ?? [];
      if (!Array.isArray(args)) throw new ProtocolError("rpc.call 'args' must be an array");
      const kwargs = value["kwargs"] ?? {};
      if (!isRecord(kwargs)) throw new ProtocolError("rpc.call 'kwargs' must be a map");
      if (mode === "send" && !hasRaw) throw new ProtocolError("a batch send needs its raw frame");
      return { type, id, name, mode, args, kwargs };
    }
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
      if (typeof handlerId !== "number" || typeof v !== "number") throw new ProtocolError("bad welcome");
      return { type, id, status: Status.OK, handlerId, v };
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
