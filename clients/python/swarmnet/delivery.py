"""Numbering, acknowledgement and replay inside a session (PROTOCOL.md, "Delivery").

Runs on the connection's I/O thread only; nothing here is thread-safe."""
from __future__ import annotations

import time
from collections import deque
from typing import Callable, Deque, List, Optional, Sequence, Tuple

from .wire import LinkKind, make_header

# A bare ACK goes out after this many numbered messages (or bytes) received without an ack riding on a send.
ACK_EVERY_MESSAGES = 128
ACK_EVERY_BYTES = 4 * 1024 * 1024
# A gap is reported (REPLAY) once, and again only if nothing came of it for this long.
RENACK_S = 0.5

Frames = Sequence[bytes]


class DeliveryChannel:
    """The client's end of one session's delivery. ``write`` hands frames to the socket and returns
    False if it could not (the peer's queue is full): the channel then retries from that message."""

    def __init__(self, secret: bytes, write: Callable[[List[bytes]], bool]) -> None:
        self._secret = secret
        self._write = write
        self._kept: Deque[Tuple[int, Frames]] = deque()  # (seq, frames), unacknowledged, oldest first
        self._next_seq = 1
        self._next_to_send = 1
        self.up = True
        self.received = 0
        self._ack_sent = 0
        self._since_ack = 0
        self._bytes_since_ack = 0
        self._nacked_at = 0
        self._nack_time = 0.0
        self.retry_at: Optional[float] = None
        self.resent = 0
        self.duplicates = 0
        self.gaps = 0

    @property
    def unacked(self) -> int:
        return len(self._kept)

    def send(self, frames: Frames) -> None:
        """Numbers and keeps ``frames`` (envelope, raw?) and sends them if the link is up."""
        seq = self._next_seq
        self._next_seq += 1
        self._kept.append((seq, frames))
        if self.up and self._next_to_send == seq:
            self._pump()

    def control(self, kind: int) -> None:
        """An unnumbered control header (ACK, RESUME, REPLAY), sent at once and not kept."""
        self._acked()
        self._write([make_header(kind, 0, self.received, self._secret)])

    def on_ack(self, ack: int) -> None:
        kept = self._kept
        while kept and kept[0][0] <= ack:
            kept.popleft()
        first = kept[0][0] if kept else self._next_seq
        if self._next_to_send < first:
            self._next_to_send = first

    def accept(self, seq: int, nbytes: int) -> bool:
        """A numbered message arrived: True to deliver it; a duplicate or a message past a gap is dropped."""
        if seq == self.received + 1:
            self.received = seq
            self._since_ack += 1
            self._bytes_since_ack += nbytes
            if self._since_ack >= ACK_EVERY_MESSAGES or self._bytes_since_ack >= ACK_EVERY_BYTES:
                self.control(LinkKind.ACK)
            return True
        if seq <= self.received:
            self.duplicates += 1
            return False
        self.gaps += 1
        expected = self.received + 1
        now = time.monotonic()
        if self._nacked_at != expected or now - self._nack_time >= RENACK_S:
            self._nacked_at, self._nack_time = expected, now
            self.control(LinkKind.REPLAY)
        return False

    def pause(self) -> None:
        """The link is down: keep everything, send nothing."""
        self.up = False
        self.retry_at = None

    def replay_from(self, ack: int) -> None:
        """The peer has everything up to ``ack``: resend the rest in order, then go on."""
        self.on_ack(ack)
        self._next_to_send = self._kept[0][0] if self._kept else self._next_seq
        self.up = True
        self.retry_at = None
        self._pump()

    def retry(self) -> None:
        """The retry time after a full queue has come."""
        self.retry_at = None
        self.up = True
        self._pump()

    def _acked(self) -> None:
        self._ack_sent = self.received
        self._since_ack = 0
        self._bytes_since_ack = 0

    def _pump(self) -> None:
        kept = self._kept
        if not kept:
            return
        base = kept[0][0]
        while self.up and self._next_to_send < self._next_seq:
            seq = self._next_to_send
            frames = kept[seq - base][1]
            self._acked()
            first = make_header(LinkKind.DATA, seq, self.received, self._secret, frames[0])
            if not self._write([first] if len(frames) == 1 else [first, *frames[1:]]):
                # The peer's queue is full: try again from here in a moment.
                self.up = False
                self.retry_at = time.monotonic() + 0.002
                return
            self._next_to_send = seq + 1
