"""The wire, as PROTOCOL.md specifies it: limits, the delivery header, CBOR."""
from __future__ import annotations

import struct
from typing import Any, Optional, Tuple

import cbor2  # type: ignore[import]  # no type information shipped (cbor2 < 5.5)

from .errors import ProtocolError

PROTOCOL_VERSION = 1
"""Sent in ``hello``; a gateway speaking another version answers ``refused`` 426."""

DEFAULT_PORT = 1857
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
DEFAULT_STREAM_WINDOW = 2048
DEFAULT_STREAM_WINDOW_BYTES = 16 * 1024 * 1024
MAX_STREAM_WINDOW = 1 << 20
MAX_NAME_LENGTH = 256
MAX_WAIT_MS = 600_000
MAX_REQUEST_ID = 0xFFFF_FFFF
DEFAULT_FILE_CHUNK_BYTES = 1024 * 1024
MAX_FILE_CHUNK_BYTES = 16 * 1024 * 1024
DEFAULT_FILE_WINDOW_BYTES = 16 * 1024 * 1024
DEFAULT_FILE_WINDOW_FILES = 128
MAX_FILES_PER_REQUEST = 100_000
ZMTP_HEARTBEAT_MS = 1000


class LinkKind:
    """Byte 1 of a delivery header."""
    DATA = 1
    UNNUMBERED = 2
    RESUME = 3
    RESUMED = 4
    REPLAY = 5
    ACK = 6
    REFUSED = 7


HEADER_BYTES = 10
CLIENT_HEADER_BYTES = 18
SECRET_BYTES = 8
_HEADER = struct.Struct(">BBII")


def make_header(kind: int, seq: int, ack: int, secret: bytes, envelope: bytes = b"") -> bytes:
    """A client -> gateway first frame: the header (marker 0, kind, seq and ack as uint32 big-endian,
    the 8-byte session secret) followed by the envelope, if any."""
    return _HEADER.pack(0, kind, seq, ack) + secret + envelope


def read_header(frame: bytes) -> Optional[Tuple[int, int, int]]:
    """``(kind, seq, ack)`` if ``frame`` starts with a gateway's delivery header (its envelope is
    ``frame[HEADER_BYTES:]``), else None (the frame is a plain CBOR envelope)."""
    if len(frame) < HEADER_BYTES or frame[0] != 0:
        return None
    _, kind, seq, ack = _HEADER.unpack_from(frame)
    return kind, seq, ack


def encode(value: Any) -> bytes:
    """CBOR for envelopes and values (bytes stay byte strings)."""
    try:
        data: bytes = cbor2.dumps(value)
        return data
    except (cbor2.CBOREncodeError, TypeError, ValueError) as err:
        from .errors import InvalidArgumentError

        raise InvalidArgumentError(f"value cannot be encoded as CBOR: {err}") from err


def as_int(value: Any, what: str) -> int:
    """An integer field of a gateway message. The gateway's encoder writes integers beyond 32 bits as
    float64 (exact up to 2**53), so an integral float is an integer here."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ProtocolError(f"{what} must be an integer, got {value!r}")


def decode(frame: bytes) -> Any:
    if not frame:
        raise ProtocolError("empty frame")
    try:
        return cbor2.loads(frame)
    except Exception as err:  # cbor2 raises several types for bad input
        raise ProtocolError(f"frame is not valid CBOR: {err}") from err
