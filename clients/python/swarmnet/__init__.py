"""swarmnet client for Python: talk to a swarmnet gateway (Node) over ZeroMQ + CBOR.

    from swarmnet import Controller
    client = Controller("127.0.0.1", 1857).get_client()
    client.ping("hello")
    for ident, reading in client.stream("sensor", [4]):
        ...
"""
from .client import Client, Controller, Stream
from .errors import (
    AbortedError,
    AdminDisabledError,
    AllocationError,
    BusyError,
    ClosedError,
    ConnectionError,
    ErrorCode,
    FileAccessError,
    FileIntegrityError,
    FileNotFoundError,
    HandlerCrashedError,
    InvalidArgumentError,
    MessageTooLargeError,
    NotAGeneratorError,
    PathNotAllowedError,
    PoolFullError,
    ProtocolError,
    RemoteError,
    ResumeRefusedError,
    SessionEndedError,
    SubroutineNotFoundError,
    SwarmnetError,
    TimeoutError,
    VersionMismatchError,
)
from .wire import PROTOCOL_VERSION

__version__ = "0.1.0"

__all__ = [
    "Client", "Controller", "Stream", "PROTOCOL_VERSION", "ErrorCode", "SwarmnetError", "AbortedError",
    "AdminDisabledError", "AllocationError", "BusyError", "ClosedError", "ConnectionError", "FileAccessError",
    "FileIntegrityError", "FileNotFoundError", "HandlerCrashedError", "InvalidArgumentError", "MessageTooLargeError", "NotAGeneratorError",
    "PathNotAllowedError", "PoolFullError", "ProtocolError", "RemoteError", "ResumeRefusedError",
    "SessionEndedError", "SubroutineNotFoundError", "TimeoutError", "VersionMismatchError",
]
