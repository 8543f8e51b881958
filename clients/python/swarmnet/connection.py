"""One session's connection: a DEALER socket owned by one I/O thread.

ZeroMQ sockets are not thread-safe, so everything that touches the socket
(sending, receiving, the delivery layer, heartbeats, the link monitor) runs on
the connection's own thread. Callers hand it work through a queue and a wake-up
pipe, and get messages back through one ``Inbox`` per request id. The
heartbeat therefore runs whatever the caller's thread is doing: inside a long
call, while a stream consumer is slow, or between calls."""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

import zmq
from zmq.utils.monitor import parse_monitor_message

from .delivery import DeliveryChannel
from .errors import ClosedError, ConnectionError, ErrorCode, SessionEndedError, SwarmnetError, error_from_wire
from .wire import (
    HEADER_BYTES,
    SECRET_BYTES,
    ZMTP_HEARTBEAT_MS,
    LinkKind,
    decode,
    make_header,
    read_header,
)

Message = Dict[str, Any]
Delivered = Tuple[Message, Optional[bytes]]

# A RESUME is repeated this often until RESUMED comes back.
RESUME_RETRY_S = 0.5

_LINK_EVENTS = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


class Inbox:
    """Messages for one request id, or the error that ended the session. One consumer (the caller's
    thread), one producer (the I/O thread). A plain lock serves as the wake-up signal: the cheapest
    cross-thread hand-off CPython has (a ``queue.Queue`` adds a condition variable and bookkeeping)."""

    def __init__(self) -> None:
        self._items: Deque[Any] = deque()
        self._signal = threading.Lock()
        self._signal.acquire()  # held: nothing signalled yet

    def put(self, item: Any) -> None:
        self._items.append(item)
        try:
            self._signal.release()
        except RuntimeError:
            pass  # already signalled; the consumer finds every item in the deque

    def get(self, timeout: Optional[float]) -> Optional[Delivered]:
        """The next message, or None when ``timeout`` (seconds) passed; raises the session's end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._items:
            if deadline is None:
                self._signal.acquire()
            else:
                left = deadline - time.monotonic()
                if left <= 0 or not self._signal.acquire(timeout=left):
                    if not self._items:
                        return None
        item = self._items[0]
        if isinstance(item, SwarmnetError):
            raise item  # left in place: every later get sees it too
        self._items.popleft()
        return item  # type: ignore[no-any-return]

    def poll(self) -> Optional[Delivered]:
        return self.get(0)


class LinkStats:
    """What the link did: reconnects seen, resumes accepted, messages resent, duplicates and gaps dropped."""

    def __init__(self) -> None:
        self.reconnects = 0
        self.resumes = 0


class Connection:
    def __init__(
        self,
        endpoint: str,
        *,
        curve: Optional[Dict[str, str]] = None,
        max_message_size: int,
        context: Optional[zmq.Context] = None,  # type: ignore[type-arg]
    ) -> None:
        self.endpoint = endpoint
        self._ctx = context or zmq.Context.instance()
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # Unique per connection and kept across ZeroMQ's reconnects (the gateway's ROUTER hands the session over).
        sock.setsockopt(zmq.ROUTING_ID, b"p" + os.urandom(12).hex().encode())
        sock.setsockopt(zmq.MAXMSGSIZE, max_message_size)
        sock.setsockopt(zmq.HEARTBEAT_IVL, ZMTP_HEARTBEAT_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, ZMTP_HEARTBEAT_MS * 3)
        if curve is not None:
            sock.setsockopt(zmq.CURVE_SERVERKEY, curve["server_public_key"].encode())
            sock.setsockopt(zmq.CURVE_PUBLICKEY, curve["public_key"].encode())
            sock.setsockopt(zmq.CURVE_SECRETKEY, curve["secret_key"].encode())
        self._sock = sock
        self._monitor = sock.get_monitor_socket(_LINK_EVENTS)
        wake_addr = f"inproc://swarmnet-wake-{id(self)}-{os.urandom(4).hex()}"
        self._wake_rx = self._ctx.socket(zmq.PAIR)
        self._wake_rx.bind(wake_addr)
        self._wake_tx = self._ctx.socket(zmq.PAIR)
        self._wake_tx.connect(wake_addr)
        self._wake_lock = threading.Lock()
        self._signalled = False
        self._commands: Deque[Callable[[], None]] = deque()
        self._inboxes: Dict[int, Inbox] = {}
        self._channel: Optional[DeliveryChannel] = None
        self._liveness_s = 15.0
        self._gw: Optional[int] = None
        self.handler_id: Optional[int] = None
        # The largest frame either side takes: ours, or the gateway's from its welcome if smaller.
        self.max_frame = max_message_size
        self._link_up = False
        self._ever_up = False
        self._lease_at: Optional[float] = None
        self._resume_at: Optional[float] = None
        self._heartbeat_at: Optional[float] = None
        self._running = True
        self.failure: Optional[SwarmnetError] = None
        self.handshake_failed = False
        self.stats = LinkStats()
        sock.connect(endpoint)
        self._thread = threading.Thread(target=self._run, name=f"swarmnet-io {endpoint}", daemon=True)
        self._thread.start()

    # ---- called from any thread -------------------------------------------------------------

    def open_inbox(self, request_id: int) -> Inbox:
        if self.failure is not None:
            raise self.failure
        inbox = Inbox()
        self._inboxes[request_id] = inbox
        return inbox

    def close_inbox(self, request_id: int) -> None:
        self._inboxes.pop(request_id, None)

    def send(self, frames: Sequence[bytes]) -> None:
        """Queues frames (envelope, raw?) for the I/O thread: numbered once the session is welcomed."""
        self.submit(lambda: self._send_now(frames))

    def submit(self, fn: Callable[[], None]) -> None:
        self._commands.append(fn)
        with self._wake_lock:
            if self._signalled or not self._running:
                return
            self._signalled = True
            self._wake_tx.send(b"")

    def close(self, timeout: float = 5.0) -> None:
        """Stops the I/O thread and closes the sockets (idempotent)."""
        if threading.current_thread() is self._thread:
            self._running = False
            return
        if self._thread.is_alive():
            self.submit(self._stop)
            self._thread.join(timeout)
        with self._wake_lock:
            if not self._wake_tx.closed:
                self._wake_tx.close(0)

    # ---- the I/O thread ----------------------------------------------------------------------

    def _stop(self) -> None:
        self._running = False

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        try:
            while self._running:
                timeout = self._next_timer_ms()
                for sock, _ in poller.poll(timeout):
                    if sock is self._sock:
                        self._drain_socket()
                    elif sock is self._wake_rx:
                        self._drain_commands()
                    else:
                        self._drain_monitor()
                self._timers()
        except Exception as err:  # a bug here must still fail the callers, not hang them
            self._end(ConnectionError(f"the connection's I/O thread failed: {err!r}"))
        finally:
            self._running = False
            try:
                self._sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close(0)
            self._sock.close(0)
            self._wake_rx.close(0)
            if self.failure is None:
                self.failure = ClosedError("the client was closed")
            for inbox in list(self._inboxes.values()):
                inbox.put(self.failure)

    def _drain_commands(self) -> None:
        with self._wake_lock:
            self._signalled = False
            while True:
                try:
                    self._wake_rx.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
        while self._commands:
            self._commands.popleft()()

    def _drain_socket(self) -> None:
        # A bounded batch, so that commands and the monitor get their turn under a flood.
        for _ in range(256):
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._on_frames(frames)

    def _drain_monitor(self) -> None:
        while True:
            try:
                msg = self._monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            event = parse_monitor_message(msg)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._on_link(True)
            elif event == zmq.EVENT_DISCONNECTED:
                self._on_link(False)
            elif event in _HANDSHAKE_FAILED:
                self.handshake_failed = True
                if self._channel is None and event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                    # Before any session: the gateway's ZAP handler refused our key.
                    self._end(ConnectionError(f"the gateway at {self.endpoint} refused this client's CURVE key"))
                    return
                self._on_link(False)

    def _write(self, frames: List[bytes]) -> bool:
        try:
            self._sock.send_multipart(frames, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def _send_now(self, frames: Sequence[bytes]) -> None:
        if self.failure is not None:
            return
        if self._channel is not None:
            self._channel.send(frames)
        else:
            self._write(list(frames))

    def _on_frames(self, frames: List[bytes]) -> None:
        header = read_header(frames[0])
        if header is None:
            # Outside the numbering: welcome, refused, session.ended, errors to a peer without a session.
            self._deliver(frames[0], frames[1] if len(frames) > 1 else None)
            return
        channel = self._channel
        if channel is None or self.failure is not None:
            return
        kind, seq, ack = header
        raw = frames[1] if len(frames) > 1 else None
        if kind == LinkKind.DATA:
            channel.on_ack(ack)
            if channel.accept(seq, len(raw) if raw is not None else 0):
                self._deliver(frames[0][HEADER_BYTES:], raw)
        elif kind == LinkKind.UNNUMBERED:
            channel.on_ack(ack)
            self._deliver(frames[0][HEADER_BYTES:], raw)
        elif kind == LinkKind.RESUMED:
            self.stats.resumes += 1
            self._resume_at = None
            self._lease_at = None
            channel.replay_from(ack)
        elif kind == LinkKind.REPLAY:
            channel.replay_from(ack)
        elif kind == LinkKind.ACK:
            channel.on_ack(ack)
        elif kind == LinkKind.REFUSED:
            self._on_refused(frames[0][HEADER_BYTES:])

    def _deliver(self, envelope: bytes, raw: Optional[bytes]) -> None:
        try:
            message = decode(envelope)
        except SwarmnetError:
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "welcome" and self._channel is None:
            self._on_welcome(message)
        if kind == "session.ended":
            self._end(error_from_wire(str(message.get("code", ErrorCode.SESSION_ENDED)), str(message.get("message", "")), None, message.get("reason")))
            return
        rid = message.get("id")
        if rid == 0 and kind == "error":
            # An error not tied to a request: everything waiting hears it.
            for waiting in list(self._inboxes.values()):
                waiting.put((message, raw))
            return
        inbox = self._inboxes.get(rid) if isinstance(rid, int) else None
        if inbox is not None:
            inbox.put((message, raw))

    def _on_welcome(self, m: Message) -> None:
        secret = m.get("secret")
        liveness = m.get("livenessMs")
        if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES or not isinstance(liveness, (int, float)):
            return
        self._gw = m.get("gw") if isinstance(m.get("gw"), int) else None
        self.handler_id = m.get("handlerId") if isinstance(m.get("handlerId"), int) else None
        limit = m.get("maxMessageSize")
        if isinstance(limit, int) and 0 < limit < self.max_frame:
            self.max_frame = limit
        self._liveness_s = liveness / 1000.0
        self._channel = DeliveryChannel(secret, self._write)
        self._heartbeat_at = time.monotonic() + self._heartbeat_period()
        # A welcome came over this link, so it is up (the monitor's handshake event may come later).
        self._link_up = self._ever_up = True

    def _heartbeat_period(self) -> float:
        return max(0.01, self._liveness_s / 3)

    def _on_link(self, up: bool) -> None:
        was_up = self._link_up
        self._link_up = up
        channel = self._channel
        if channel is None or self.failure is not None:
            self._ever_up = self._ever_up or up
            return
        if not up:
            channel.pause()
            self._resume_at = None
            if self._lease_at is None:
                self._lease_at = time.monotonic() + self._liveness_s
            return
        if was_up and self._lease_at is None:
            return
        self.stats.reconnects += 1
        channel.control(LinkKind.RESUME)
        self._resume_at = time.monotonic() + RESUME_RETRY_S

    def _on_refused(self, body: bytes) -> None:
        m: Any = {}
        try:
            m = decode(body) if body else {}
        except SwarmnetError:
            pass
        if not isinstance(m, dict):
            m = {}
        gw = m.get("gw")
        message = str(m.get("message", "the gateway refused this session"))
        if isinstance(gw, int) and self._gw is not None and gw != self._gw:
            self._end(SessionEndedError(f"the gateway restarted and does not know this session ({message})", "restarted"))
            return
        self._end(error_from_wire(str(m.get("code", ErrorCode.SESSION_ENDED)), message, None, m.get("reason", "unknown")))

    def _end(self, error: SwarmnetError) -> None:
        """The session is over: every waiting and later request fails with ``error``."""
        if self.failure is not None:
            return
        if isinstance(error, SwarmnetError) and error.code in (ErrorCode.RESUME_REFUSED,) and not isinstance(error, SessionEndedError):
            error = SessionEndedError(error.message, "refused")
        self.failure = error
        self._channel = None
        self._lease_at = self._resume_at = self._heartbeat_at = None
        for inbox in list(self._inboxes.values()):
            inbox.put(error)

    def _next_timer_ms(self) -> int:
        times = [t for t in (self._lease_at, self._resume_at, self._heartbeat_at) if t is not None]
        channel = self._channel
        if channel is not None and channel.retry_at is not None:
            times.append(channel.retry_at)
        if not times:
            return 1000
        return max(0, int((min(times) - time.monotonic()) * 1000) + 1)

    def _timers(self) -> None:
        now = time.monotonic()
        channel = self._channel
        if channel is None:
            return
        if self._lease_at is not None and now >= self._lease_at:
            ms = int(self._liveness_s * 1000)
            self._end(SessionEndedError(f"the link to the gateway was down for {ms} ms, longer than the session's lease", "lease"))
            return
        if channel.retry_at is not None and now >= channel.retry_at and self._link_up:
            channel.retry()
        if self._resume_at is not None and now >= self._resume_at:
            channel.control(LinkKind.RESUME)
            self._resume_at = now + RESUME_RETRY_S
        if self._heartbeat_at is not None and now >= self._heartbeat_at:
            if self._link_up:
                channel.control(LinkKind.ACK)
            self._heartbeat_at = now + self._heartbeat_period()
