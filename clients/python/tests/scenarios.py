"""Scenarios test/python-client.test.ts runs against a live gateway; each prints JSON lines.

    python3 scenarios.py <scenario> <endpoint> [args...]
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Any, Callable, Dict, List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from swarmnet import Controller, SwarmnetError  # noqa: E402


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def code_of(fn: Callable[[], Any]) -> str:
    try:
        fn()
    except SwarmnetError as err:
        return err.code
    return "no error"


def stream_count(endpoint: str, n: str) -> None:
    """One stream of n items: every ident once and in order, each item the 8 bytes count() yields."""
    client = Controller(endpoint=endpoint).get_client()
    count, in_order, bad = 0, True, 0
    start = time.perf_counter()
    for ident, item in client.stream("count", [int(n)]):
        if ident != count:
            in_order = False
        if int.from_bytes(item[4:8], "big") != ident:
            bad += 1
        count += 1
    seconds = time.perf_counter() - start
    # A loop left with break while the stream is kept in a variable: the next call aborts it first.
    kept = client.stream("count", [10**8])
    for ident, _ in kept:
        if ident == 5:
            break
    after_break = client.ping("after break")
    emit(count=count, inOrder=in_order, bad=bad, seconds=seconds, afterBreak=after_break, keptAborted=kept.aborted)
    client.close_handler()


def stream_through_resets(endpoint: str, n: str, every: str) -> None:
    """A stream that reports progress every `every` items; the test resets the link on each report, mid-flow."""
    client = Controller(endpoint=endpoint, timeout=30).get_client()
    count, in_order = 0, True
    for ident, item in client.stream("count", [int(n)], window=256):
        if ident != count or int.from_bytes(item[4:8], "big") != ident:
            in_order = False
        count += 1
        if count % int(every) == 0 and count < int(n):
            emit(progress=count)
    emit(count=count, inOrder=in_order, ping=client.ping("after"), **client.link_stats)
    client.close_handler()


def files(endpoint: str, download_dir: str, folder: str, *uploads: str) -> None:
    """Downloads `folder` into download_dir (twice: the second run finds every file in place), uploads files."""
    client = Controller(endpoint=endpoint, download_dir=download_dir).get_client()
    paths = client.get_files_from_gateway(folder=folder)
    digests = {}
    for p in paths:
        with open(p, "rb") as f:
            digests[os.path.relpath(p, download_dir)] = hashlib.sha256(f.read()).hexdigest()
    uploaded = client.send_files_to_gateway(list(uploads), "from-python", verify=True) if uploads else 0
    # Into a folder where the test left a .part of the first upload: only the rest is sent.
    resumed = client.send_files_to_gateway(list(uploads[:1]), "resumed") if uploads else 0
    missing = code_of(lambda: client.get_files_from_gateway(folder="no/such/folder"))
    escape = code_of(lambda: client.get_files_from_gateway(files=["../outside"]))
    emit(digests=digests, uploaded=uploaded, resumed=resumed, missing=missing, escape=escape, ping=client.ping(1))
    client.close_handler()


def resume_download(endpoint: str, download_dir: str, name: str) -> None:
    """Downloads one file (the test planted a NAME.part of the same source)."""
    client = Controller(endpoint=endpoint, download_dir=download_dir).get_client()
    paths = client.get_files_from_gateway(files=[name])
    with open(paths[0], "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    emit(path=paths[0], sha256=digest, part=os.path.exists(paths[0] + ".part"))
    client.close_handler()


def curve(endpoint: str, public_key: str, secret_key: str, server_key: str, other_public: str, other_secret: str) -> None:
    keys = {"public_key": public_key, "secret_key": secret_key, "server_public_key": server_key}
    client = Controller(endpoint=endpoint, curve=keys).get_client()
    pong = client.ping("through curve")
    client.close_handler()
    stranger = {"public_key": other_public, "secret_key": other_secret, "server_public_key": server_key}
    # The refusal comes as a handshake failure, long before this deadline (which only bounds the wait).
    refused = code_of(lambda: Controller(endpoint=endpoint, curve=stranger, connect_timeout=15).get_client())
    plain = code_of(lambda: Controller(endpoint=endpoint, connect_timeout=1).get_client())
    emit(pong=pong, refused=refused, plain=plain)


def errors(endpoint: str) -> None:
    """Session-level errors: a wrong protocol version, a full pool, a closed client."""
    version = code_of(lambda: Controller(endpoint=endpoint).get_client(protocol_version=2))
    controller = Controller(endpoint=endpoint)
    first = controller.get_client()
    full = code_of(lambda: controller.get_client())
    first.close_handler()
    closed = code_of(lambda: first.ping(1))
    again = controller.get_client()  # the slot came back at once: close_handler ends the session
    pong = again.ping("ok")
    again.close_handler()
    small = Controller(endpoint=endpoint, max_message_size=4096).get_client()
    too_large = code_of(lambda: small.ping(bytes(8192)))  # refused before sending; the session goes on
    emit(version=version, full=full, closed=closed, again=pong, tooLarge=too_large, afterTooLarge=small.ping("fine"))
    small.close_handler()


def long_call(endpoint: str, ms: str) -> None:
    """A call that takes longer than the gateway's lease: the I/O thread heartbeats meanwhile."""
    client = Controller(endpoint=endpoint, timeout=60).get_client()
    value = client.get_subroutine_batch("slow", [int(ms)])
    time.sleep(int(ms) / 1000)  # the user's own code, between calls: heartbeats go on
    emit(value=value, ping=client.ping("still here"))
    client.close_handler()


def session_end(endpoint: str) -> None:
    """The gateway stops while a call waits: the call fails with SessionEndedError (reason stopped)."""
    client = Controller(endpoint=endpoint, timeout=30).get_client()
    try:
        client.get_subroutine_batch("slow", [20_000])
        emit(error="no error")
    except SwarmnetError as err:
        emit(error=err.code, reason=getattr(err, "reason", None))




SCENARIOS: Dict[str, Callable[..., None]] = {
    "stream-count": stream_count,
    "stream-resets": stream_through_resets,
    "files": files,
    "resume-download": resume_download,
    "curve": curve,
    "errors": errors,
    "long-call": long_call,
    "session-end": session_end,
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]](*sys.argv[2:])
