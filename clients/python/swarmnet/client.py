"""The pynetwork-shaped API: ``Controller(host, port).get_client()`` and the client's calls.

Times are in seconds (Python's habit); sizes in bytes. One client is one
session on one gateway handler and runs one request at a time: calls from
several threads wait their turn (the wait counts against the call's deadline).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from types import TracebackType
from typing import Any, Callable, Deque, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Type, Union

from . import files as _files
from .connection import Connection, Delivered, Inbox
from .errors import (
    ClosedError,
    ErrorCode,
    InvalidArgumentError,
    MessageTooLargeError,
    ProtocolError,
    SessionEndedError,
    SwarmnetError,
    TimeoutError,
    error_from_wire,
    raise_if_error,
)
from .wire import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PORT,
    DEFAULT_STREAM_WINDOW,
    DEFAULT_STREAM_WINDOW_BYTES,
    DEFAULT_TIMEOUT_S,
    MAX_NAME_LENGTH,
    MAX_REQUEST_ID,
    MAX_STREAM_WINDOW,
    MAX_WAIT_MS,
    PROTOCOL_VERSION,
    as_int,
    encode,
)

Curve = Dict[str, str]
"""CURVE keys as 40-character Z85 strings: ``public_key``, ``secret_key`` (this client's) and ``server_public_key``."""

ItemCallback = Callable[[str, int, Any], Optional[bool]]
EndCallback = Callable[[str], None]

_HELLO_ID = 0


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
        raise InvalidArgumentError(f"subroutine name must be a non-empty string of at most {MAX_NAME_LENGTH} characters, got {name!r}")
    return name


def _check_curve(curve: Optional[Curve]) -> Optional[Curve]:
    if curve is None:
        return None
    for key in ("public_key", "secret_key", "server_public_key"):
        value = curve.get(key)
        if not isinstance(value, str) or len(value) != 40:
            raise InvalidArgumentError(f"curve['{key}'] must be a 40-character Z85 string")
    return curve


class Controller:
    """Knows one gateway and makes clients for it (pynetwork's Controller).

    :param host: the gateway's host. @default ``"127.0.0.1"``
    :param port: its port. @default 1857
    :param endpoint: a full ZeroMQ endpoint instead of host and port (``"tcp://10.0.0.2:1857"``).
    :param timeout: deadline of each call in seconds (``None``: none). @default 10
    :param connect_timeout: how long ``get_client`` waits for the welcome, seconds. @default 5
    :param download_dir: where downloads land. @default ``"Downloads"``
    :param curve: CURVE keys (see ``Curve``); required by a gateway that runs CURVE.
    :param max_message_size: largest frame accepted, bytes. @default 64 MiB
    :raises InvalidArgumentError: (``SWARMNET_INVALID_ARGUMENT``) for a bad option.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        endpoint: Optional[str] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT_S,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        download_dir: str = "Downloads",
        curve: Optional[Curve] = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        if endpoint is None:
            if not isinstance(port, int) or not 0 < port < 65536:
                raise InvalidArgumentError(f"port must be an integer in 1..65535, got {port!r}")
            endpoint = f"tcp://{host}:{port}"
        if timeout is not None and timeout <= 0:
            raise InvalidArgumentError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        if connect_timeout <= 0:
            raise InvalidArgumentError(f"connect_timeout must be a positive number of seconds, got {connect_timeout!r}")
        self.endpoint = endpoint
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.download_dir = download_dir
        self.curve = _check_curve(curve)
        self.max_message_size = max_message_size
        self._clients: List["Client"] = []

    def get_client(self, *, wait: Optional[float] = None, protocol_version: int = PROTOCOL_VERSION) -> "Client":
        """Opens a session on the gateway (one handler slot).

        :param wait: when the pool is full, queue this many seconds for a slot instead of failing at once.
        :param protocol_version: the version sent in ``hello`` (tests use it to see a 426).
        :raises PoolFullError: ``SWARMNET_POOL_FULL`` (status 503).
        :raises VersionMismatchError: ``SWARMNET_VERSION_MISMATCH`` (426).
        :raises TimeoutError: ``SWARMNET_TIMEOUT``: no welcome within ``connect_timeout``.
        :raises ConnectionError: ``SWARMNET_CONNECTION``: the gateway refused our CURVE key.
        """
        hello: Dict[str, Any] = {"type": "hello", "id": _HELLO_ID, "v": protocol_version, "maxMessageSize": self.max_message_size}
        limit = self.connect_timeout
        if wait is not None:
            if not 0 <= wait * 1000 <= MAX_WAIT_MS:
                raise InvalidArgumentError(f"wait must be 0..{MAX_WAIT_MS // 1000} seconds, got {wait!r}")
            hello["waitMs"] = int(wait * 1000)
            limit += wait
        conn = Connection(self.endpoint, curve=self.curve, max_message_size=self.max_message_size)
        try:
            inbox = conn.open_inbox(_HELLO_ID)
            conn.send([encode(hello)])
            got = inbox.get(limit)
            if got is None:
                raise TimeoutError(f"no welcome from {self.endpoint} within {limit:g} s")
            m, _ = got
            if m.get("type") == "welcome":
                conn.close_inbox(_HELLO_ID)
                client = Client(conn, self)
                self._clients.append(client)
                return client
            raise error_from_wire(str(m.get("code", ErrorCode.PROTOCOL)), str(m.get("message", "")), m.get("name"))
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Closes every client this controller made."""
        for client in self._clients:
            client.close_handler()
        self._clients.clear()

    def __enter__(self) -> "Controller":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    """One session on one gateway handler. Use ``Controller.get_client()`` to make one."""

    def __init__(self, conn: Connection, controller: Controller) -> None:
        self._conn = conn
        self._controller = controller
        self.timeout = controller.timeout
        self.download_dir = controller.download_dir
        self._lock = threading.Lock()
        self._next_id = 1
        self._closed = False
        self._stream: Optional["Stream"] = None

    @property
    def handler_id(self) -> Optional[int]:
        """The gateway's handler number for this session (from the welcome)."""
        return self._conn.handler_id

    @property
    def link_stats(self) -> Dict[str, int]:
        """Reconnects seen and resumes the gateway accepted."""
        return {"reconnects": self._conn.stats.reconnects, "resumes": self._conn.stats.resumes}

    # ---- the request machinery ------------------------------------------------------------

    def _deadline(self, timeout: Union[float, None, str]) -> Optional[float]:
        t = self.timeout if timeout == "default" else timeout
        return None if t is None else time.monotonic() + float(t)

    def _acquire(self, deadline: Optional[float]) -> None:
        if self._closed:
            raise ClosedError("the client is closed")
        stream = self._stream
        if stream is not None and stream._thread == threading.get_ident():
            # This thread left a stream open (a loop it broke out of, kept in a variable) and now
            # makes another call: abort that stream first, as leaving the loop would have.
            stream.close()
        if deadline is None:
            self._lock.acquire()
        elif not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise TimeoutError("the call's deadline passed while an earlier call on this client was still running")
        if self._closed:
            self._lock.release()
            raise ClosedError("the client is closed")

    def _open(self, message: Dict[str, Any], raw: Optional[bytes] = None) -> Tuple[int, Inbox]:
        """Sends a request (the caller holds the lock) and returns its id and inbox.

        :raises MessageTooLargeError: ``SWARMNET_MESSAGE_TOO_LARGE``: a frame over the smaller ``maxMessageSize``."""
        rid = self._next_id
        self._next_id = 1 if rid >= MAX_REQUEST_ID else rid + 1
        message["id"] = rid
        envelope = encode(message)
        limit = self._conn.max_frame
        for what, frame in (("envelope", envelope), ("buffer", raw)):
            # The delivery header adds 18 bytes to the envelope's frame.
            if frame is not None and len(frame) + (18 if what == "envelope" else 0) > limit:
                raise MessageTooLargeError(f"the {message['type']} {what} is {len(frame)} bytes, over the {limit}-byte maxMessageSize")
        inbox = self._conn.open_inbox(rid)
        self._conn.send([envelope] if raw is None else [envelope, raw])
        return rid, inbox

    def _send(self, message: Dict[str, Any], raw: Optional[bytes] = None) -> None:
        envelope = encode(message)
        self._conn.send([envelope] if raw is None else [envelope, raw])

    @staticmethod
    def _wait(inbox: Inbox, deadline: Optional[float], what: str) -> Delivered:
        got = inbox.get(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if got is None:
            raise TimeoutError(f"{what}: no answer before the deadline")
        raise_if_error(got[0])
        return got

    def _request(self, message: Dict[str, Any], raw: Optional[bytes], timeout: Union[float, None, str], expect: str) -> Delivered:
        deadline = self._deadline(timeout)
        self._acquire(deadline)
        rid = -1
        try:
            rid, inbox = self._open(message, raw)
            while True:
                try:
                    got = self._wait(inbox, deadline, f"{message['type']} {message.get('name', '')}".strip())
                except TimeoutError:
                    if message["type"] in ("rpc.call", "ping"):
                        self._send({"type": "rpc.cancel", "id": rid})
                    raise
                if got[0].get("type") == expect:
                    return got
        finally:
            if rid >= 0:
                self._conn.close_inbox(rid)
            self._lock.release()

    # ---- calls --------------------------------------------------------------------------------

    def ping(self, data: Any = "hello", *, timeout: Union[float, None, str] = "default") -> Any:
        """Round trip to the gateway: returns ``data`` (any CBOR value).

        :raises TimeoutError: ``SWARMNET_TIMEOUT``. :raises SessionEndedError: ``SWARMNET_SESSION_ENDED``."""
        m, _ = self._request({"type": "ping", "data": data}, None, timeout, "pong")
        return m.get("data")

    def get_subroutine_batch(self, name: str, args: Sequence[Any] = (), kwargs: Optional[Mapping[str, Any]] = None, *, timeout: Union[float, None, str] = "default") -> Any:
        """Calls subroutine ``name(*args, kwargs)`` on the gateway; returns its bytes (``bytes``) or value.

        :raises SubroutineNotFoundError: ``SWARMNET_SUBROUTINE_NOT_FOUND``.
        :raises RemoteError: ``SWARMNET_REMOTE_ERROR`` (the subroutine raised; ``remote_name``), ``SWARMNET_BAD_RESULT``.
        :raises TimeoutError: ``SWARMNET_TIMEOUT`` (the gateway is told to drop the call)."""
        message = {"type": "rpc.call", "name": _check_name(name), "mode": "get", "args": list(args), "kwargs": dict(kwargs or {})}
        m, raw = self._request(message, None, timeout, "rpc.result")
        return raw if m.get("raw") is True else m.get("value")

    def send_subroutine_batch(self, name: str, buffer: bytes, args: Sequence[Any] = (), kwargs: Optional[Mapping[str, Any]] = None, *, timeout: Union[float, None, str] = "default") -> int:
        """Sends ``buffer`` to subroutine ``name`` (it gets it as ``kwargs.buffer``); returns the integer it returns."""
        if not isinstance(buffer, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError("buffer must be bytes")
        message = {"type": "rpc.call", "name": _check_name(name), "mode": "send", "args": list(args), "kwargs": dict(kwargs or {})}
        m, _ = self._request(message, bytes(buffer), timeout, "rpc.result")
        return as_int(m.get("value"), "a batch send's answer")

    def stream(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Optional[Mapping[str, Any]] = None,
        *,
        window: int = DEFAULT_STREAM_WINDOW,
        window_bytes: int = DEFAULT_STREAM_WINDOW_BYTES,
        timeout: Optional[float] = None,
    ) -> "Stream":
        """Opens a stream from generator subroutine ``name``; iterate it for ``(ident, buffer)`` pairs.
        Leaving the loop early (``break``, or ``close()``) aborts the stream on the gateway.

        :param window: items the gateway may send ahead of what you consumed (1..1,048,576). @default 2048
        :param window_bytes: bytes it may send ahead. @default 16 MiB
        :param timeout: longest wait for the next item, seconds (``None``: no limit; a dead gateway
            still ends the wait through the session's lease). @default None
        """
        if not isinstance(window, int) or not 1 <= window <= MAX_STREAM_WINDOW:
            raise InvalidArgumentError(f"window must be an integer in 1..{MAX_STREAM_WINDOW}, got {window!r}")
        if not isinstance(window_bytes, int) or window_bytes < 1:
            raise InvalidArgumentError(f"window_bytes must be a positive integer, got {window_bytes!r}")
        return Stream(self, _check_name(name), list(args), dict(kwargs or {}), window, window_bytes, timeout)

    def get_subroutine_stream(
        self,
        name: str,
        callback: Optional[ItemCallback] = None,
        eos_callback: Optional[EndCallback] = None,
        args: Sequence[Any] = (),
        kwargs: Optional[Mapping[str, Any]] = None,
        **options: Any,
    ) -> Union[int, "Stream"]:
        """pynetwork's stream call. With ``callback(name, ident, buffer)`` it runs the stream to its end
        and returns the number of items (return ``False`` from the callback to abort;
        ``eos_callback(name)`` runs only for an end the gateway decided). Without a callback it returns
        the ``Stream`` iterator."""
        s = self.stream(name, args, kwargs, **options)
        if callback is None:
            return s
        with s:
            for ident, buffer in s:
                if callback(name, ident, buffer) is False:
                    s.close()
                    return s.count
        if eos_callback is not None:
            eos_callback(name)
        return s.count

    def get_files_from_gateway(
        self,
        folder: Optional[str] = None,
        regex: Optional[str] = None,
        files: Optional[Sequence[str]] = None,
        *,
        download_dir: Optional[str] = None,
        chunk_bytes: int = _files.DEFAULT_FILE_CHUNK_BYTES,
        timeout: Optional[float] = None,
    ) -> List[str]:
        """Downloads a gateway folder (recursively, optionally only paths matching ``regex``, a JavaScript
        regular expression run on the gateway) or the given ``files``; returns the local paths.
        A folder lands as ``download_dir/<path relative to the folder>``, ``files`` under their base names.
        Interrupted downloads resume: the bytes in ``NAME.part`` are not fetched again.

        :raises PathNotAllowedError: ``SWARMNET_PATH_NOT_ALLOWED``. :raises FileNotFoundError: ``SWARMNET_FILE_NOT_FOUND``."""
        deadline = self._deadline("default")
        self._acquire(deadline)
        try:
            return _files.download(self, folder, regex, files, download_dir or self.download_dir, chunk_bytes, timeout)
        finally:
            self._lock.release()

    def send_files_to_gateway(self, files: Sequence[str], dirname: str = ".", *, chunk_bytes: int = _files.DEFAULT_FILE_CHUNK_BYTES, verify: bool = False, timeout: Optional[float] = None) -> int:
        """Uploads local ``files`` into ``downloadDir/dirname`` on the gateway (under their base names);
        returns how many. A rerun after an interruption resumes from what the gateway already holds.
        With ``verify`` the gateway checks each file's SHA-256."""
        deadline = self._deadline("default")
        self._acquire(deadline)
        try:
            return _files.upload(self, list(files), dirname, chunk_bytes, verify, timeout)
        finally:
            self._lock.release()

    def close_gateway(self, *, timeout: Union[float, None, str] = "default") -> None:
        """Asks the gateway to stop (only a gateway with ``allowRemoteClose`` obeys)."""
        self._request({"type": "gateway.close"}, None, timeout, "gateway.closing")

    def close_handler(self, timeout: float = 5.0) -> None:
        """Ends the session (its handler slot frees at once) and closes the socket. Idempotent."""
        if self._closed:
            return
        stream = self._stream
        if stream is not None and stream._thread == threading.get_ident():
            stream.close(timeout)
        got_lock = self._lock.acquire(timeout=timeout)
        try:
            self._closed = True
            if self._conn.failure is None:
                try:
                    inbox = self._conn.open_inbox(_HELLO_ID)
                    self._send({"type": "session.close", "id": _HELLO_ID})
                    end = time.monotonic() + timeout
                    while True:
                        got = inbox.get(max(0.0, end - time.monotonic()))
                        if got is None or got[0].get("type") == "session.closed":
                            break
                except SwarmnetError:
                    pass
        finally:
            self._conn.close()
            if got_lock:
                self._lock.release()

    close = close_handler

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self.close_handler()


class Stream:
    """An open stream: iterate for ``(ident, buffer)``; ``buffer`` is ``bytes`` or a CBOR value.
    Credit is granted as you consume, so a slow loop slows the gateway's generator, nothing is dropped."""

    def __init__(self, client: Client, name: str, args: List[Any], kwargs: Dict[str, Any], window: int, window_bytes: int, timeout: Optional[float]) -> None:
        self.name = name
        self.count = 0
        self.aborted = False
        self._client = client
        self._timeout = timeout
        self._window = window
        self._window_bytes = window_bytes
        self._items: Deque[Tuple[int, Any, int]] = deque()
        self._owed_items = 0
        self._owed_bytes = 0
        self._ended = False
        self._released = False
        self._thread = threading.get_ident()
        self._items_step = max(1, window // 4)
        self._bytes_step = max(1, window_bytes // 4)
        client._acquire(client._deadline("default"))
        client._stream = self
        try:
            self._id, self._inbox = client._open({"type": "stream.open", "name": name, "args": args, "kwargs": kwargs, "window": window, "windowBytes": window_bytes})
        except BaseException:
            self._release()
            raise

    def __iter__(self) -> Iterator[Tuple[int, Any]]:
        return self

    def __next__(self) -> Tuple[int, Any]:
        while not self._items:
            if self._ended:
                self._release()
                raise StopIteration
            self._grant()  # about to wait: whatever was consumed goes back as credit first
            self._receive(self._timeout)
        ident, value, nbytes = self._items.popleft()
        self.count += 1
        self._owed_items += 1
        self._owed_bytes += nbytes
        if self._owed_items >= self._items_step or self._owed_bytes >= self._bytes_step:
            self._grant()
        return ident, value

    def _grant(self) -> None:
        if self._owed_items or self._owed_bytes:
            self._client._send({"type": "stream.credit", "id": self._id, "items": self._owed_items, "bytes": self._owed_bytes})
            self._owed_items = self._owed_bytes = 0

    def _receive(self, timeout: Optional[float]) -> None:
        try:
            got = self._client._wait(self._inbox, None if timeout is None else time.monotonic() + timeout, f"stream {self.name}")
        except BaseException:
            self._ended = True
            self._release()
            raise
        m, raw = got
        kind = m.get("type")
        if kind == "stream.items":
            entries = m.get("items")
            if not isinstance(entries, list):
                raise ProtocolError("stream.items without an items array")
            at = 0
            for entry in entries:
                ident, length = entry[0], as_int(entry[1], "stream.items length")
                if length >= 0:
                    if raw is None or at + length > len(raw):
                        raise ProtocolError("stream.items announced more bytes than its raw frame holds")
                    self._items.append((ident, raw[at : at + length], length))
                    at += length
                else:
                    self._items.append((ident, entry[2], 0))
        elif kind == "stream.end":
            self._ended = True
            self.aborted = m.get("aborted") is True

    def close(self, timeout: float = 10.0) -> None:
        """Aborts the stream if it is still running (the generator's ``finally`` runs on the gateway)."""
        if self._ended:
            self._release()
            return
        self.aborted = True
        try:
            self._client._send({"type": "stream.abort", "id": self._id})
            end = time.monotonic() + timeout
            while not self._ended:
                self._receive(max(0.0, end - time.monotonic()))
        except SwarmnetError:
            pass
        finally:
            self._items.clear()
            self._ended = True
            self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            if self._client._stream is self:
                self._client._stream = None
            if hasattr(self, "_id"):
                self._client._conn.close_inbox(self._id)
            self._client._lock.release()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not self._released and not self._ended:
            try:
                self.close(1.0)
            except Exception:
                pass
