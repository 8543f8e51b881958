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
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** pynetwork's status codes, kept with their meaning. */
export const Status = {
  OK: 200,
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  UPGRADE_REQUIRED: 426,
  FAILED: 500,
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
  constructor(message: string, options?: ErrorOptions & { remoteName?: string; code?: ErrorCode }) {
    super(options?.code ?? ErrorCode.REMOTE, message, { ...options, status: Status.FAILED });
    this.remoteName = options?.remoteName;
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

/** The gateway ended the session (restart budget spent, gateway stopping, ...). */
export class SessionEndedError extends SwarmnetError {
  constructor(message: string, options?: ErrorOptions) {
    super(ErrorCode.SESSION_ENDED, message, options);
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

const knownCodes = new Set<string>(Object.values(ErrorCode));

/**
 * Rebuilds a typed error from an `error` (or `refused`) message. Unknown codes
 * from a newer gateway become a RemoteError that keeps the code in its message.
 */
export function errorFromWire(code: string, message: string, remoteName?: string): SwarmnetError {
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
      return new SessionEndedError(message);
    case ErrorCode.TIMEOUT:
      return new TimeoutError(message);
    case ErrorCode.INVALID_ARGUMENT:
      return new InvalidArgumentError(message);
    case ErrorCode.REMOTE:
    case ErrorCode.BAD_RESULT:
    case ErrorCode.REMOTE_CLOSE_DISABLED:
      return new RemoteError(message, { code, remoteName });
    default:
      return new RemoteError(knownCodes.has(code) ? message : `${code}: ${message}`, { remoteName });
  }
}
