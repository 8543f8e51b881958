/**
 * Every failure swarmnet reports, in one module. Each class carries a stable
 * `code` (assert on it, never on message text) and, where it crossed the
 * wire, the pynetwork-style `status` it came with.
 */

export const ErrorCode = {
  POOL_FULL: "SWARMNET_POOL_FULL",
  ALLOCATION_FAILED: "SWARMNET_ALLOCATION_FAILED",
  VERSION_MISMATCH: "SWARMNET_VERSION_MISMATCH",
  REMOTE: "SWARMNET_REMOTE_ERROR",
  SUBROUTINE_NOT_FOUND: "SWARMNET_SUBROUTINE_NOT_FOUND",
  BAD_RESULT: "SWARMNET_BAD_RESULT",
  TIMEOUT: "SWARMNET_TIMEOUT",
  CONNECTION: "SWARMNET_CONNECTION",
  PROTOCOL: "SWARMNET_PROTOCOL",
  BUSY: "SWARMNET_BUSY",
  HANDLER_CRASHED: "SWARMNET_HANDLER_CRASHED",
  SESSION_ENDED: "SWARMNET_SESSION_ENDED",
  CLOSED: "SWARMNET_CLOSED",
  INVALID_ARGUMENT: "SWARMNET_INVALID_ARGUMENT",
  REMOTE_CLOSE_DISABLED: "SWARMNET_REMOTE_CLOSE_DISABLED",
  GATEWAY_STOPPING: "SWARMNET_GATEWAY_STOPPING",
  ABORTED: "SWARMNET_ABORTED",
  NOT_A_GENERATOR: "SWARMNET_NOT_A_GENERATOR",
  LEASE_EXPIRED: "SWARMNET_LEASE_EXPIRED",
  PATH_NOT_ALLOWED: "SWARMNET_PATH_NOT_ALLOWED",
  FILE_NOT_FOUND: "SWARMNET_FILE_NOT_FOUND",
  FILE_ACCESS: "SWARMNET_FILE_ACCESS",
  FILE_INTEGRITY: "SWARMNET_FILE_INTEGRITY",
  FILE_EXISTS: "SWARMNET_FILE_EXISTS",
  FILE_BUSY: "SWARMNET_FILE_BUSY",
  FILE_CHANGED: "SWARMNET_FILE_CHANGED",
  FILES_NOT_DELIVERED: "SWARMNET_FILES_NOT_DELIVERED",
  ADMIN_DISABLED: "SWARMNET_ADMIN_DISABLED",
  CONNECTION_REFUSED: "SWARMNET_CONNECTION_REFUSED",
  HANDSHAKE_FAILED: "SWARMNET_HANDSHAKE_FAILED",
  MESSAGE_TOO_LARGE: "SWARMNET_MESSAGE_TOO_LARGE",
  /** A resume (or a message) for a session without its secret, or a hello for a routing id that has a session. */
  RESUME_REFUSED: "SWARMNET_RESUME_REFUSED",
  /** A session's unacknowledged messages passed the delivery layer's hard cap: ended loudly, never dropped. */
  DELIVERY_OVERFLOW: "SWARMNET_DELIVERY_OVERFLOW",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** pynetwork's status codes, kept with their meaning. */
export const Status = {
  OK: 200,
  BAD_REQUEST: 400,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  TOO_LARGE: 413,
  UPGRADE_REQUIRED: 426,
  FAILED: 500,
  CONFLICT: 409,
  POOL_FULL: 503,
  TIMEOUT: 504,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

export class SwarmnetError extends Error {
  readonly code: ErrorCode;
  readonly status: number | undefined;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { status?: number }) {
    super(message, options);
    this.code = code;
    this.status = options?.status;
    this.name = new.target.name;
  }
}

/** The gateway's pool has no free handler (status 503). */
export class PoolFullError extends SwarmnetError {
  constructor(message = "gateway pool is full", options?: ErrorOptions) {
    super(ErrorCode.POOL_FULL, message, { ...options, status: Status.POOL_FULL });
  }
}

/** The gateway could not allocate a handler for another reason (status 500). */
export class AllocationError extends SwarmnetError {
  constructor(message = "gateway failed to allocate a handler", options?: ErrorOptions) {
    super(ErrorCode.ALLOCATION_FAILED, message, { ...options, status: Status.FAILED });
  }
}

/** The gateway speaks another protocol version (status 426). */
export class VersionMismatchError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.VERSION_MISMATCH, message, { ...options, status: Status.UPGRADE_REQUIRED });
  }
}

/** A subroutine threw on the gateway; `message` is its message. */
export class RemoteError extends SwarmnetError {
  /** The remote error's class name, e.g. "TypeError". */
  readonly remoteName: string | undefined;
  /** The subroutine's stack on the gateway, when the gateway sends it (Gateway option `remoteStack`). */
  readonly remoteStack: string | undefined;
  constructor(message: string, options?: ErrorOptions & { remoteName?: string; remoteStack?: string; code?: ErrorCode }) {
    super(options?.code ?? ErrorCode.REMOTE, message, { ...options, status: Status.FAILED });
    this.remoteName = options?.remoteName;
    this.remoteStack = options?.remoteStack;
  }
}

/** No subroutine of that name is registered on the gateway. */
export class SubroutineNotFoundError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.SUBROUTINE_NOT_FOUND, message, { ...options, status: Status.NOT_FOUND });
  }
}

/** A call's deadline passed before its answer came. */
export class TimeoutError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.TIMEOUT, message, { ...options, status: Status.TIMEOUT });
  }
}

/** The connection to the gateway failed or was lost. */
export class ConnectionError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.CONNECTION, message, options);
  }
}

/** A message broke the protocol: not CBOR, wrong shape, unknown kind, oversize. */
export class ProtocolError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.PROTOCOL, message, { ...options, status: Status.BAD_REQUEST });
  }
}

/** The handler is serving another request (one request at a time per handler). */
export class BusyError extends SwarmnetError {
  constructor(message = "handler is busy with another request", options?: ErrorOptions) {
    super(ErrorCode.BUSY, message, options);
  }
}

/** The handler crashed while serving the call; the supervisor restarted it. */
export class HandlerCrashedError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.HANDLER_CRASHED, message, { ...options, status: Status.FAILED });
  }
}

/**
 * Why a session ended, as `SessionEndedError.reason` says it:
 * - `lease`: the link was down (or the client silent) longer than the gateway's `livenessMs`;
 * - `stopped`: the gateway stopped (`gateway.stop()`, `closeGateway()`, SIGINT);
 * - `restarted`: the gateway came back as a new process that does not know this session;
 * - `closed`: the session was closed (by this client);
 * - `crashed`: its handler crashed past the supervisor's restart budget;
 * - `overflow`: more unacknowledged messages than the delivery layer's hard cap;
 * - `refused`: the gateway refused to resume it (not this client's session);
 * - `unknown`: the gateway no longer knows why.
 */
export type SessionEndReason = "lease" | "stopped" | "restarted" | "closed" | "crashed" | "overflow" | "refused" | "unknown";

const END_REASONS: ReadonlySet<string> = new Set(["lease", "stopped", "restarted", "closed", "crashed", "overflow", "refused", "unknown"]);

/** The reason a wire code implies, when the message does not name one. */
export function endReasonOf(code: string, reason?: unknown): SessionEndReason {
  if (typeof reason === "string" && END_REASONS.has(reason)) return reason as SessionEndReason;
  switch (code) {
    case ErrorCode.LEASE_EXPIRED:
      return "lease";
    case ErrorCode.GATEWAY_STOPPING:
      return "stopped";
    case ErrorCode.DELIVERY_OVERFLOW:
      return "overflow";
    case ErrorCode.RESUME_REFUSED:
      return "refused";
    default:
      return "unknown";
  }
}

/**
 * The session is over: every call, stream and transfer in flight on it fails
 * with this, once. `reason` says why (lease expired, gateway stopped or
 * restarted, crash budget spent, ...).
 */
export class SessionEndedError extends SwarmnetError {
  readonly reason: SessionEndReason;
  constructor(message: string, options?: ErrorOptions & { reason?: SessionEndReason }) {
    super(ErrorCode.SESSION_ENDED, message, options);
    this.reason = options?.reason ?? "unknown";
  }
}

/**
 * A resume or a hello for a session that is not this peer's: it lacks the
 * session's secret (status 409). The session itself is left alone.
 */
export class ResumeRefusedError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.RESUME_REFUSED, message, { ...options, status: Status.CONFLICT });
  }
}

/** The client, controller or gateway was closed locally. */
export class ClosedError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.CLOSED, message, options);
  }
}

/** Bad input detected before anything went on the wire. */
export class InvalidArgumentError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.INVALID_ARGUMENT, message, options);
  }
}

/** The work was cancelled through an AbortSignal or by the caller. */
export class AbortedError extends SwarmnetError {
  constructor(message = "aborted", options?: ErrorOptions) {
    super(ErrorCode.ABORTED, message, options);
  }
}

/** A stream was asked of a subroutine that is not a generator (and returned nothing iterable). */
export class NotAGeneratorError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.NOT_A_GENERATOR, message, { ...options, status: Status.BAD_REQUEST });
  }
}

/**
 * A path was refused before any file was touched: `..`, absolute, a symlink
 * leading out of its root, a NUL or control character, an empty or reserved
 * name (CON, NUL, COM1, ...). Both sides check; the gateway's check is the one
 * that counts.
 */
export class PathNotAllowedError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.PATH_NOT_ALLOWED, message, { ...options, status: Status.FORBIDDEN });
  }
}

/** A folder or file asked for does not exist (in any of the gateway's file roots). */
export class FileNotFoundError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.FILE_NOT_FOUND, message, { ...options, status: Status.NOT_FOUND });
  }
}

/** A file exists but cannot be read or written (not a regular file, permissions, I/O error). */
export class FileAccessError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.FILE_ACCESS, message, { ...options, status: Status.FAILED });
  }
}

/**
 * A received file's size (or, with `verify`, its SHA-256) does not match its
 * source, e.g. it changed during the transfer. The file is not renamed.
 */
export class FileIntegrityError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.FILE_INTEGRITY, message, { ...options, status: Status.FAILED });
  }
}

/** The target of a transfer exists and the call said `ifExists: "error"`. */
export class FileExistsError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.FILE_EXISTS, message, { ...options, status: Status.FAILED });
  }
}

/** Another transfer (in this process or another one) is writing the same target right now. */
export class FileBusyError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.FILE_BUSY, message, { ...options, status: Status.FAILED });
  }
}

/** The source file changed between its listing and its reading (size or mtime): nothing was spliced. */
export class SourceChangedError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.FILE_CHANGED, message, { ...options, status: Status.FAILED });
  }
}

/** One path a transfer did not deliver, and why (`code` is a stable error code). */
export interface NotDelivered {
  /** The path as the sender named it (remote path for downloads, local path for uploads). */
  readonly path: string;
  readonly code: string;
  readonly reason: string;
}

/** What a file transfer did: see `FileTransferOptions.onReport` in the runtime. */
export interface TransferReport {
  /** Local paths (downloads) or gateway-side names (uploads) now in place. */
  readonly delivered: readonly string[];
  /** Targets left alone because they existed (`ifExists: "skip"`). */
  readonly skipped: readonly string[];
  /** Paths not delivered, each with a reason. */
  readonly notDelivered: readonly NotDelivered[];
  /** Folders created (empty folders of a folder download included). */
  readonly folders: readonly string[];
  /** Bytes that crossed the wire in this call. */
  readonly bytesSent: number;
  /** Bytes already held by `.part` files from an earlier, interrupted transfer (not sent again). */
  readonly bytesResumed: number;
}

/**
 * Some paths of a transfer were not delivered (unreadable, not a regular
 * file, a name the receiving file system cannot hold, ...); every other path
 * was. `report` lists both, with a reason per missing path.
 */
export class FilesNotDeliveredError extends SwarmnetError {
  readonly report: TransferReport;
  constructor(report: TransferReport, options?: ErrorOptions) {
    const n = report.notDelivered.length;
    const first = report.notDelivered[0];
    super(
      ErrorCode.FILES_NOT_DELIVERED,
      `${n} path${n === 1 ? " was" : "s were"} not delivered (${report.delivered.length} delivered)` +
        (first ? `: ${JSON.stringify(first.path)}: ${first.reason}${n > 1 ? ", ..." : ""}` : ""),
      { ...options, status: Status.FAILED },
    );
    this.report = report;
  }
}

/** An admin request (`admin.snapshot`, `swarmnet inspect`) reached a gateway without `admin: true` (status 403). */
export class AdminDisabledError extends SwarmnetError {
  constructor(message = "this gateway does not answer admin requests (start it with admin: true / --admin)", options?: ErrorOptions) {
    super(ErrorCode.ADMIN_DISABLED, message, { ...options, status: Status.FORBIDDEN });
  }
}

/**
 * Nothing accepted the TCP connection (nothing listens at that host and port,
 * or it is unreachable) for as long as the client kept trying (`connectTimeoutMs`).
 */
export class ConnectionRefusedError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.CONNECTION_REFUSED, message, options);
  }
}

/**
 * The connection was made but the ZMTP/CURVE handshake failed: the client's
 * key is not authorized, the server key is wrong, or CURVE is on one side only.
 */
export class HandshakeError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.HANDSHAKE_FAILED, message, options);
  }
}

/**
 * A request or a result is larger than `maxMessageSize` (the smaller of the
 * two sides' limits): refused by whichever side found it before it was sent
 * (status 413). The message gives both sizes. The connection stays usable.
 */
export class MessageTooLargeError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.MESSAGE_TOO_LARGE, message, { ...options, status: Status.TOO_LARGE });
  }
}

const knownCodes = new Set<string>(Object.values(ErrorCode));

/**
 * Rebuilds a typed error from an `error` (or `refused`) message. Unknown codes
 * from a newer gateway become a RemoteError that keeps the code in its message.
 */
export function errorFromWire(code: string, message: string, remoteName?: string, remoteStack?: string): SwarmnetError {
  switch (code) {
    case ErrorCode.POOL_FULL:
      return new PoolFullError(message);
    case ErrorCode.ALLOCATION_FAILED:
      return new AllocationError(message);
    case ErrorCode.VERSION_MISMATCH:
      return new VersionMismatchError(message);
    case ErrorCode.SUBROUTINE_NOT_FOUND:
      return new SubroutineNotFoundError(message);
    case ErrorCode.PROTOCOL:
      return new ProtocolError(message);
    case ErrorCode.BUSY:
      return new BusyError(message);
    case ErrorCode.HANDLER_CRASHED:
      return new HandlerCrashedError(message);
    case ErrorCode.NOT_A_GENERATOR:
      return new NotAGeneratorError(message);
    case ErrorCode.SESSION_ENDED:
    case ErrorCode.GATEWAY_STOPPING:
    case ErrorCode.LEASE_EXPIRED:
    case ErrorCode.DELIVERY_OVERFLOW:
      return new SessionEndedError(message, { reason: endReasonOf(code) });
    case ErrorCode.RESUME_REFUSED:
      return new ResumeRefusedError(message);
    case ErrorCode.TIMEOUT:
      return new TimeoutError(message);
    case ErrorCode.INVALID_ARGUMENT:
      return new InvalidArgumentError(message);
    case ErrorCode.PATH_NOT_ALLOWED:
      return new PathNotAllowedError(message);
    case ErrorCode.FILE_NOT_FOUND:
      return new FileNotFoundError(message);
    case ErrorCode.FILE_ACCESS:
      return new FileAccessError(message);
    case ErrorCode.FILE_INTEGRITY:
      return new FileIntegrityError(message);
    case ErrorCode.FILE_EXISTS:
      return new FileExistsError(message);
    case ErrorCode.FILE_BUSY:
      return new FileBusyError(message);
    case ErrorCode.FILE_CHANGED:
      return new SourceChangedError(message);
    case ErrorCode.ADMIN_DISABLED:
      return new AdminDisabledError(message);
    case ErrorCode.MESSAGE_TOO_LARGE:
      return new MessageTooLargeError(message);
    case ErrorCode.REMOTE:
    case ErrorCode.BAD_RESULT:
    case ErrorCode.REMOTE_CLOSE_DISABLED:
      return new RemoteError(message, { code, remoteName, ...(remoteStack !== undefined ? { remoteStack } : {}) });
    default:
      return new RemoteError(knownCodes.has(code) ? message : `${code}: ${message}`, { remoteName });
  }
}
