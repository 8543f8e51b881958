"""Downloads and uploads on one client, under the receiver's credit (PROTOCOL.md, "Files").

A download writes each file to ``NAME.part`` and renames it once every byte is
there; beside it ``NAME.part.src`` records the source's size, so a rerun
continues a ``.part`` of the same source from its length and starts over
otherwise (bytes of one file arrive in order, so a ``.part`` is always a
prefix)."""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import time
from typing import TYPE_CHECKING, Any, BinaryIO, Dict, List, Optional, Sequence

from .errors import (
    FileAccessError,
    FileIntegrityError,
    InvalidArgumentError,
    PathNotAllowedError,
    ProtocolError,
    TimeoutError,
)
from .errors import raise_if_error
from .wire import DEFAULT_FILE_CHUNK_BYTES, DEFAULT_FILE_WINDOW_BYTES, DEFAULT_FILE_WINDOW_FILES, MAX_FILE_CHUNK_BYTES, as_int

if TYPE_CHECKING:
    from .client import Client

__all__ = ["DEFAULT_FILE_CHUNK_BYTES", "download", "upload"]

PART_SUFFIX = ".part"
SOURCE_SUFFIX = ".part.src"
# Files per file.get request (the protocol allows 100,000).
BATCH_FILES = 10_000


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else time.monotonic() + timeout


def _local_segments(path: str) -> List[str]:
    """A gateway path, checked before it names anything here: relative, no ``..``, no empty segment."""
    segments = path.split("/")
    if path.startswith("/") or any(s in ("", ".", "..") or "\0" in s or "\\" in s for s in segments):
        raise PathNotAllowedError(f"the gateway listed {path!r}, which may not be written under the download folder")
    return segments


def _chunk(chunk_bytes: int) -> int:
    if not isinstance(chunk_bytes, int) or not 1 <= chunk_bytes <= MAX_FILE_CHUNK_BYTES:
        raise InvalidArgumentError(f"chunk_bytes must be an integer in 1..{MAX_FILE_CHUNK_BYTES}, got {chunk_bytes!r}")
    return chunk_bytes


class _Incoming:
    def __init__(self, remote: str, local: str, size: int) -> None:
        self.remote = remote
        self.local = local
        self.size = size
        self.offset = 0
        self.next = 0
        self.handle: Optional[BinaryIO] = None
        self.done = False

    def plan(self) -> None:
        """Where to start: the length of a ``.part`` of the same source, else 0."""
        part, src = self.local + PART_SUFFIX, self.local + SOURCE_SUFFIX
        try:
            with open(src, encoding="utf-8") as f:
                same = json.load(f).get("size") == self.size
            held = os.path.getsize(part)
        except (OSError, ValueError):
            same, held = False, 0
        self.offset = held if same and held <= self.size else 0
        self.next = self.offset
        if self.offset == 0:
            os.makedirs(os.path.dirname(self.local) or ".", exist_ok=True)
            with open(src, "w", encoding="utf-8") as f:
                json.dump({"size": self.size, "path": self.remote}, f)

    def write(self, offset: int, data: bytes) -> None:
        if offset != self.next or offset + len(data) > self.size or not data:
            raise ProtocolError(f"file.data for {self.remote!r} at {offset} (+{len(data)}) does not continue the transfer")
        if self.handle is None:
            self.handle = open(self.local + PART_SUFFIX, "r+b" if self.offset > 0 else "wb")
        self.handle.seek(offset)
        self.handle.write(data)
        self.next += len(data)

    def finish(self) -> None:
        part = self.local + PART_SUFFIX
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        elif self.size == 0 or not os.path.exists(part):
            open(part, "wb").close()
        actual = os.path.getsize(part)
        if actual != self.size:
            raise FileIntegrityError(f"{self.remote!r} is {actual} bytes after the transfer, {self.size} expected")
        os.replace(part, self.local)
        try:
            os.unlink(self.local + SOURCE_SUFFIX)
        except OSError:
            pass
        self.done = True


def download(client: "Client", folder: Optional[str], regex: Optional[str], files: Optional[Sequence[str]], download_dir: str, chunk_bytes: int, timeout: Optional[float]) -> List[str]:
    if (folder is None) == (files is None):
        raise InvalidArgumentError("get_files_from_gateway needs exactly one of folder and files")
    chunk = _chunk(chunk_bytes)
    deadline = _deadline(timeout if timeout is not None else client.timeout)
    listing: Dict[str, Any] = {"type": "file.list"}
    if folder is not None:
        listing["folder"] = folder
        if regex is not None:
            listing["regex"] = {"source": regex, "flags": ""}
    else:
        listing["files"] = list(files or [])
    rid, inbox = client._open(listing)
    try:
        m, _ = client._wait(inbox, deadline, "file.list")
    finally:
        client._conn.close_inbox(rid)
    if m.get("type") != "file.listing" or not isinstance(m.get("files"), list):
        raise ProtocolError(f"expected file.listing, got {m.get('type')!r}")
    root = os.path.abspath(download_dir)
    plan: List[_Incoming] = []
    seen = set()
    for entry in m["files"]:
        path, size = entry[0], as_int(entry[1], "file.listing size")
        segments = _local_segments(path) if folder is not None else [posixpath.basename(path)]
        _local_segments(segments[-1])
        local = os.path.join(root, *segments)
        if local in seen:
            raise InvalidArgumentError(f"two files would land at {local!r}")
        seen.add(local)
        item = _Incoming(path, local, size)
        item.plan()
        plan.append(item)
    for start in range(0, len(plan), BATCH_FILES):
        _fetch(client, folder, plan[start : start + BATCH_FILES], chunk, timeout)
    return [item.local for item in plan]


def _fetch(client: "Client", folder: Optional[str], items: List[_Incoming], chunk: int, timeout: Optional[float]) -> None:
    window_bytes, window_files = DEFAULT_FILE_WINDOW_BYTES, DEFAULT_FILE_WINDOW_FILES
    request: Dict[str, Any] = {
        "type": "file.get",
        "files": [[it.remote, it.offset, it.size] for it in items],
        "chunkBytes": chunk,
        "windowBytes": window_bytes,
        "windowFiles": window_files,
    }
    if folder is not None:
        request["folder"] = folder
    owed_bytes = owed_files = 0
    rid, inbox = client._open(request)
    try:
        while True:
            if owed_bytes or owed_files:
                # About to wait: what was written goes back as credit first, so the window never stalls.
                client._send({"type": "file.credit", "id": rid, "bytes": owed_bytes, "files": owed_files})
                owed_bytes = owed_files = 0
            m, raw = client._wait(inbox, _deadline(timeout), "file.get")
            kind = m.get("type")
            if kind == "file.data":
                f, o = as_int(m.get("f"), "file.data f"), as_int(m.get("o"), "file.data o")
                if not 0 <= f < len(items) or raw is None:
                    raise ProtocolError("file.data names no file of this transfer")
                item = items[f]
                try:
                    item.write(o, raw)
                except OSError as err:
                    raise FileAccessError(f"cannot write {item.local!r}: {err}") from err
                owed_bytes += len(raw)
                if item.next == item.size:
                    item.finish()
                    owed_files += 1
                if owed_bytes >= window_bytes // 4 or owed_files >= window_files // 4:
                    client._send({"type": "file.credit", "id": rid, "bytes": owed_bytes, "files": owed_files})
                    owed_bytes = owed_files = 0
            elif kind == "file.done":
                break
        # Files with nothing to send (empty, or a complete .part) are finished from the request alone.
        for item in items:
            if not item.done:
                if item.next != item.size:
                    raise FileIntegrityError(f"{item.remote!r}: the transfer ended at {item.next} of {item.size} bytes")
                item.finish()
    finally:
        client._conn.close_inbox(rid)
        for item in items:
            if item.handle is not None:
                item.handle.close()
                item.handle = None


def _sha256(path: str) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def upload(client: "Client", files: List[str], dirname: str, chunk_bytes: int, verify: bool, timeout: Optional[float]) -> int:
    chunk = _chunk(chunk_bytes)
    sizes = []
    for path in files:
        try:
            sizes.append(os.stat(path).st_size)
        except OSError as err:
            from .errors import FileNotFoundError

            raise FileNotFoundError(f"cannot upload {path!r}: {err.strerror}") from err
    request: Dict[str, Any] = {
        "type": "file.put",
        "dirname": dirname,
        "files": [[os.path.basename(p), s] for p, s in zip(files, sizes)],
        "chunkBytes": chunk,
    }
    if verify:
        request["sha256"] = [_sha256(p) for p in files]
    rid, inbox = client._open(request)
    try:
        m, _ = client._wait(inbox, _deadline(timeout if timeout is not None else client.timeout), "file.put")
        if m.get("type") != "file.ready":
            raise ProtocolError(f"expected file.ready, got {m.get('type')!r}")
        offsets = [as_int(o, "file.ready offset") for o in m["offsets"]]
        window_bytes, window_files = as_int(m["windowBytes"], "windowBytes"), as_int(m["windowFiles"], "windowFiles")
        sent = acked = 0
        started = acked_files = 0

        def take(block: bool) -> bool:
            """Handles what has arrived (first waiting for one message if ``block``); True once the upload is done."""
            nonlocal acked, acked_files
            got = client._wait(inbox, _deadline(timeout), "file.put") if block else inbox.poll()
            while got is not None:
                msg = got[0]
                raise_if_error(msg)
                if msg.get("type") == "file.done":
                    return True
                if msg.get("type") == "file.credit":
                    acked += as_int(msg.get("bytes", 0), "file.credit bytes")
                    acked_files += as_int(msg.get("files", 0), "file.credit files")
                got = inbox.poll()
            return False

        for index, (path, size) in enumerate(zip(files, sizes)):
            pos = offsets[index]
            if pos >= size:
                continue
            while started - acked_files >= window_files:
                if take(True):
                    return len(files)
            started += 1
            with open(path, "rb") as f:
                f.seek(pos)
                while pos < size:
                    if take(sent - acked >= window_bytes):
                        return len(files)
                    if sent - acked >= window_bytes:
                        continue
                    data = f.read(min(chunk, size - pos))
                    if not data:
                        raise FileIntegrityError(f"{path!r} shrank during the upload")
                    client._send({"type": "file.data", "id": rid, "f": index, "o": pos}, data)
                    pos += len(data)
                    sent += len(data)
        while not take(True):
            pass
        return len(files)
    finally:
        client._conn.close_inbox(rid)
