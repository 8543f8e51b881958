"""Every failure the client reports, with the same stable ``code`` strings as
the Node runtime (``protocol/errors.ts``). Catch a class, or test ``err.code``."""
from __future__ import annotations

import builtins
from typing import Optional


class ErrorCode:
    POOL_FULL = "SWARMNET_POOL_FULL"
    ALLOCATION_FAILED = "SWARMNET_ALLOCATION_FAILED"
    VERSION_MISMATCH = "SWARMNET_VERSION_MISMATCH"
    REMOTE = "SWARMNET_REMOTE_ERROR"
    SUBROUTINE_NOT_FOUND = "SWARMNET_SUBROUTINE_NOT_FOUND"
    BAD_RESULT = "SWARMNET_BAD_RESULT"
    TIMEOUT = "SWARMNET_TIMEOUT"
    CONNECTION = "SWARMNET_CONNECTION"
    PROTOCOL = "SWARMNET_PROTOCOL"
    BUSY = "SWARMNET_BUSY"
    HANDLER_CRASHED = "SWARMNET_HANDLER_CRASHED"
    SESSION_ENDED = "SWARMNET_SESSION_ENDED"
    CLOSED = "SWARMNET_CLOSED"
    INVALID_ARGUMENT = "SWARMNET_INVALID_ARGUMENT"
    REMOTE_CLOSE_DISABLED = "SWARMNET_REMOTE_CLOSE_DISABLED"
    GATEWAY_STOPPING = "SWARMNET_GATEWAY_STOPPING"
    ABORTED = "SWARMNET_ABORTED"
    NOT_A_GENERATOR = "SWARMNET_NOT_A_GENERATOR"
    LEASE_EXPIRED = "SWARMNET_LEASE_EXPIRED"
    PATH_NOT_ALLOWED = "SWARMNET_PATH_NOT_ALLOWED"
    FILE_NOT_FOUND = "SWARMNET_FILE_NOT_FOUND"
    FILE_ACCESS = "SWARMNET_FILE_ACCESS"
    FILE_INTEGRITY = "SWARMNET_FILE_INTEGRITY"
    ADMIN_DISABLED = "SWARMNET_ADMIN_DISABLED"
    RESUME_REFUSED = "SWARMNET_RESUME_REFUSED"
    DELIVERY_OVERFLOW = "SWARMNET_DELIVERY_OVERFLOW"
    MESSAGE_TOO_LARGE = "SWARMNET_MESSAGE_TOO_LARGE"


class SwarmnetError(Exception):
    """Base class: ``code`` is stable (assert on it), ``status`` is pynetwork's status when the error crossed the wire."""

    code: str = ErrorCode.REMOTE
    status: Optional[int] = None

    def __init__(self, message: str, code: Optional[str] = None, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class PoolFullError(SwarmnetError):
    """Every handler slot of the gateway is taken (status 503)."""
    code, status = ErrorCode.POOL_FULL, 503


class AllocationError(SwarmnetError):
    code, status = ErrorCode.ALLOCATION_FAILED, 500


class VersionMismatchError(SwarmnetError):
    """The gateway speaks another protocol version (status 426)."""
    code, status = ErrorCode.VERSION_MISMATCH, 426


class RemoteError(SwarmnetError):
    """The subroutine raised on the gateway; ``remote_name`` is its class name (a JavaScript name such as ``TypeError``)."""
    code, status = ErrorCode.REMOTE, 500

    def __init__(self, message: str, code: Optional[str] = None, remote_name: Optional[str] = None) -> None:
        super().__init__(message, code)
        self.remote_name = remote_name


class SubroutineNotFoundError(SwarmnetError):
    code, status = ErrorCode.SUBROUTINE_NOT_FOUND, 404


class TimeoutError(SwarmnetError, builtins.TimeoutError):  # noqa: A001 - the Node name, and still a builtin TimeoutError
    """A call's (or the connect) deadline passed."""
    code, status = ErrorCode.TIMEOUT, 504


class ConnectionError(SwarmnetError, builtins.ConnectionError):  # noqa: A001 - the Node name, and still a builtin ConnectionError
    """The connection failed (e.g. a CURVE handshake the gateway refused)."""
    code = ErrorCode.CONNECTION


class ProtocolError(SwarmnetError):
    """A message broke the protocol (either side)."""
    code, status = ErrorCode.PROTOCOL, 400


class BusyError(SwarmnetError):
    code = ErrorCode.BUSY


class HandlerCrashedError(SwarmnetError):
    code, status = ErrorCode.HANDLER_CRASHED, 500


class SessionEndedError(SwarmnetError):
    """The session is over; ``reason`` is one of lease, stopped, restarted, closed, crashed, overflow, refused, unknown."""
    code = ErrorCode.SESSION_ENDED

    def __init__(self, message: str, reason: str = "unknown") -> None:
        super().__init__(message)
        self.reason = reason


class ResumeRefusedError(SwarmnetError):
    code, status = ErrorCode.RESUME_REFUSED, 409


class ClosedError(SwarmnetError):
    code = ErrorCode.CLOSED


class InvalidArgumentError(SwarmnetError, ValueError):
    code = ErrorCode.INVALID_ARGUMENT


class AbortedError(SwarmnetError):
    code = ErrorCode.ABORTED


class NotAGeneratorError(SwarmnetError):
    code, status = ErrorCode.NOT_A_GENERATOR, 400


class PathNotAllowedError(SwarmnetError):
    code, status = ErrorCode.PATH_NOT_ALLOWED, 403


class FileNotFoundError(SwarmnetError, builtins.FileNotFoundError):  # noqa: A001 - the Node name, and still a builtin FileNotFoundError
    code, status = ErrorCode.FILE_NOT_FOUND, 404


class FileAccessError(SwarmnetError):
    code, status = ErrorCode.FILE_ACCESS, 500


class FileIntegrityError(SwarmnetError):
    code, status = ErrorCode.FILE_INTEGRITY, 500


class AdminDisabledError(SwarmnetError):
    code, status = ErrorCode.ADMIN_DISABLED, 403


class MessageTooLargeError(SwarmnetError):
    """A request or an answer is larger than the smaller of the two sides' ``maxMessageSize`` (status 413);
    refused before it was sent, the session stays usable."""
    code, status = ErrorCode.MESSAGE_TOO_LARGE, 413


_END_REASONS = {"lease", "stopped", "restarted", "closed", "crashed", "overflow", "refused", "unknown"}


def end_reason_of(code: str, reason: object = None) -> str:
    """The session-end reason a wire code implies when the message names none."""
    if isinstance(reason, str) and reason in _END_REASONS:
        return reason
    return {
        ErrorCode.LEASE_EXPIRED: "lease",
        ErrorCode.GATEWAY_STOPPING: "stopped",
        ErrorCode.DELIVERY_OVERFLOW: "overflow",
        ErrorCode.RESUME_REFUSED: "refused",
    }.get(code, "unknown")


_BY_CODE = {
    cls.code: cls
    for cls in (
        PoolFullError, AllocationError, VersionMismatchError, SubroutineNotFoundError, ProtocolError, BusyError,
        HandlerCrashedError, ResumeRefusedError, TimeoutError, InvalidArgumentError, PathNotAllowedError,
        FileNotFoundError, FileAccessError, FileIntegrityError, AdminDisabledError, NotAGeneratorError, MessageTooLargeError,
    )
}
_KNOWN = {v for k, v in vars(ErrorCode).items() if not k.startswith("_")}


def error_from_wire(code: str, message: str, name: Optional[str] = None, reason: object = None) -> SwarmnetError:
    """Rebuilds a typed error from an ``error``, ``refused`` or ``session.ended`` message.
    Unknown codes (a newer gateway) become a RemoteError that keeps the code in its message."""
    if code in (ErrorCode.SESSION_ENDED, ErrorCode.GATEWAY_STOPPING, ErrorCode.LEASE_EXPIRED, ErrorCode.DELIVERY_OVERFLOW):
        return SessionEndedError(message, end_reason_of(code, reason))
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(message)
    if code in (ErrorCode.REMOTE, ErrorCode.BAD_RESULT, ErrorCode.REMOTE_CLOSE_DISABLED):
        return RemoteError(message, code, name)
    return RemoteError(message if code in _KNOWN else f"{code}: {message}", None, name)


def raise_if_error(message: dict) -> None:  # type: ignore[type-arg]
    """Raises the typed error an ``error`` message carries; anything else passes."""
    if message.get("type") == "error":
        name = message.get("name")
        raise error_from_wire(str(message.get("code", ErrorCode.PROTOCOL)), str(message.get("message", "")), name if isinstance(name, str) else None)
