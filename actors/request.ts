/**
 * A request as the client side builds it: the one place that checks a
 * request's arguments, names its kind and its label, and encodes it. The
 * Client class (runtime/client.ts) and the composable client actor
 * (runtime/client-actor.ts) build their requests here; the client machine
 * (actors/client.ts) carries them as `PendingCall`s; the handler
 * (actors/handler.ts) names the request it serves with the same kinds.
 *
 * Every check fails with InvalidArgumentError (SWARMNET_INVALID_ARGUMENT)
 * whose message starts with the method or command that was given it.
 */
import { InvalidArgumentError, MAX_STREAM_WINDOW, describeThrown, encode, wireValueProblem, type Kwargs } from "../protocol/index.js";
import type { Frames } from "../transports/transport.js";

/**
 * What a request asks for, one word per idea, the same on the client and on
 * the handler serving it (ARCHITECTURE.md's glossary maps each to its public
 * method, wire kind and handler state). `download` and `upload` are named from
 * the client's side: a download is served by the handler's FileDownloadJob.
 */
export type RequestKind =
  "ping" | "batchGet" | "batchSend" | "stream" | "listFiles" | "download" | "upload" | "listSubroutines" | "inspect" | "closeGateway";

/** A checked request, not numbered yet: what `encodeRequest` puts on the wire under an id. */
export interface Request {
  readonly kind: RequestKind;
  /** The public method or command it came from ("getSubroutineBatch", "call", ...): error messages start with it. */
  readonly method: string;
  /** The wire message without its `id`. */
  readonly message: Readonly<Record<string, unknown>>;
  /** Bytes that travel uncopied in their own frame (a batch send's buffer). */
  readonly raw: Uint8Array | undefined;
  /** What the user asked, in their words, for error messages: "call mount_usage", "stream of sensor". */
  readonly label: string;
}

function isPlainObject(value: unknown): value is Kwargs {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A deadline in ms: a positive integer (2^31 ms and beyond too); else the error naming `method`. */
export function checkTimeout(method: string, timeoutMs: unknown): InvalidArgumentError | undefined {
  if (typeof timeoutMs === "number" && Number.isInteger(timeoutMs) && timeoutMs > 0) return undefined;
  return new InvalidArgumentError(`${method}: timeoutMs must be a positive integer, got ${String(timeoutMs)}`);
}

/** A subroutine's name, args and kwargs: a non-empty string, an array and a plain object; else the error naming `method`. */
export function checkTarget(method: string, name: unknown, args: unknown, kwargs: unknown): InvalidArgumentError | undefined {
  if (typeof name !== "string" || name.length === 0) {
    return new InvalidArgumentError(`${method}: name must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  if (!Array.isArray(args)) return new InvalidArgumentError(`${method}: args must be an array`);
  if (!isPlainObject(kwargs)) return new InvalidArgumentError(`${method}: kwargs must be a plain object`);
  return undefined;
}

/** A round trip with `data`. */
export function pingRequest(data: unknown, method = "ping"): Request {
  return { kind: "ping", method, message: { type: "ping", data }, raw: undefined, label: "ping" };
}

/** Batch get: `name(...args, kwargs)` on the gateway (`rpc.call`, mode "get"). */
export function batchGetRequest(method: string, name: string, args: readonly unknown[], kwargs: Kwargs): Request | InvalidArgumentError {
  const bad = checkTarget(method, name, args, kwargs);
  if (bad !== undefined) return bad;
  return {
    kind: "batchGet",
    method,
    message: { type: "rpc.call", name, mode: "get", args, kwargs },
    raw: undefined,
    label: `call ${name}`,
  };
}

/** Batch send: `buffer` (a Uint8Array, in its own frame) reaches `name` as `kwargs.buffer` (`rpc.call`, mode "send"). */
export function batchSendRequest(
  method: string,
  name: string,
  buffer: unknown,
  args: readonly unknown[],
  kwargs: Kwargs,
): Request | InvalidArgumentError {
  const bad = checkTarget(method, name, args, kwargs);
  if (bad !== undefined) return bad;
  if (!(buffer instanceof Uint8Array)) return new InvalidArgumentError(`${method}: buffer must be a Uint8Array`);
  if ("buffer" in kwargs) return new InvalidArgumentError(`${method}: kwargs.buffer is reserved for the bytes sent`);
  return {
    kind: "batchSend",
    method,
    message: { type: "rpc.call", name, mode: "send", args, kwargs },
    raw: buffer,
    label: `send to ${name}`,
  };
}

/** A stream of generator `name` with a window of `window` items (1..MAX_STREAM_WINDOW) and `windowBytes` bytes (`stream.open`). */
export function streamRequest(
  method: string,
  name: string,
  args: readonly unknown[],
  kwargs: Kwargs,
  window: number,
  windowBytes: number,
): Request | InvalidArgumentError {
  const bad = checkTarget(method, name, args, kwargs);
  if (bad !== undefined) return bad;
  if (!Number.isInteger(window) || window < 1 || window > MAX_STREAM_WINDOW) {
    return new InvalidArgumentError(`${method}: window must be an integer in 1..${MAX_STREAM_WINDOW}, got ${String(window)}`);
  }
  if (!Number.isInteger(windowBytes) || windowBytes < 1) {
    return new InvalidArgumentError(`${method}: windowBytes must be a positive integer, got ${String(windowBytes)}`);
  }
  return {
    kind: "stream",
    method,
    message: { type: "stream.open", name, args, kwargs, window, windowBytes },
    raw: undefined,
    label: `stream of ${name}`,
  };
}

const LABELS: Partial<Record<RequestKind, string>> = {
  listFiles: "file listing",
  download: "file download",
  upload: "file upload",
  listSubroutines: "subroutine listing",
  inspect: "inspect",
  closeGateway: "close gateway",
};

/** A request without user arguments (a listing, inspect, closeGateway, a transfer's opening message). */
export function plainRequest(kind: RequestKind, message: Readonly<Record<string, unknown>>, method: string = kind): Request {
  return { kind, method, message, raw: undefined, label: LABELS[kind] ?? kind };
}

/**
 * Why the request's values would not arrive as they are (-0, lone surrogates,
 * cycles, ...): checked before anything is queued or sent.
 */
export function wireProblem(request: Request): InvalidArgumentError | undefined {
  const { message } = request;
  const problem = wireValueProblem(message["type"] === "ping" ? message["data"] : [message["args"], message["kwargs"]]);
  if (problem === undefined) return undefined;
  return new InvalidArgumentError(`${request.method}: arguments cannot cross the wire as they are: ${problem}`);
}

/** The request's frames under wire id `id`: `[envelope]` or `[envelope, raw]`; or why it cannot be encoded. */
export function encodeRequest(request: Request, id: number): Frames | InvalidArgumentError {
  let envelope: Uint8Array;
  try {
    envelope = encode({ ...request.message, id });
  } catch (err) {
    return new InvalidArgumentError(`${request.method}: arguments cannot be encoded as CBOR: ${describeThrown(err).message}`, {
      cause: err,
    });
  }
  return request.raw === undefined ? [envelope] : [envelope, request.raw];
}
