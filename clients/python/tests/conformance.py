"""Runs the data-driven conformance cases (test/conformance/cases.json) with the Python client
and prints one JSON outcome per case; test/python-client.test.ts checks them with the same
code that checks the Node client's outcomes.

    python3 conformance.py tcp://127.0.0.1:PORT path/to/cases.json
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import cbor2  # noqa: E402
import zmq  # noqa: E402

from swarmnet import Controller, RemoteError, SwarmnetError  # noqa: E402
from swarmnet.wire import HEADER_BYTES, LinkKind, make_header, read_header  # noqa: E402


def from_json(v: Any) -> Any:
    if isinstance(v, dict):
        if set(v) == {"$bytes"}:
            return bytes.fromhex(v["$bytes"])
        return {k: from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_json(x) for x in v]
    return v


def to_json(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, dict):
        return {str(k): to_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    return v


def error_outcome(err: SwarmnetError) -> Dict[str, Any]:
    out: Dict[str, Any] = {"error": err.code, "message": err.message}
    if isinstance(err, RemoteError):
        out["remoteName"] = err.remote_name
    return out


def run_call(client: Any, c: Dict[str, Any]) -> Dict[str, Any]:
    try:
        if c["op"] == "ping":
            return {"value": to_json(client.ping(from_json(c["data"])))}
        if c["op"] == "get":
            return {"value": to_json(client.get_subroutine_batch(c["subroutine"], from_json(c.get("args", [])), from_json(c.get("kwargs", {}))))}
        return {"value": to_json(client.send_subroutine_batch(c["subroutine"], from_json(c["buffer"]), from_json(c.get("args", [])), from_json(c.get("kwargs", {}))))}
    except SwarmnetError as err:
        return error_outcome(err)


def run_stream(client: Any, c: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {"count": 0, "inOrder": True, "bytes": 0, "values": [], "aborted": False}
    options = {"window": c["window"]} if "window" in c else {}
    try:
        with client.stream(c["subroutine"], from_json(c.get("args", [])), from_json(c.get("kwargs", {})), **options) as s:
            for ident, item in s:
                if ident != out["count"]:
                    out["inOrder"] = False
                out["count"] += 1
                if isinstance(item, bytes):
                    out["bytes"] += len(item)
                else:
                    out["values"].append(to_json(item))
                if c.get("abortAfter") == out["count"]:
                    s.close()
                    break
            out["aborted"] = s.aborted
    except SwarmnetError as err:
        out.update(error_outcome(err))
    out["pingAfter"] = client.ping("after") == "after"
    return out


def run_wire(endpoint: str, c: Dict[str, Any]) -> Dict[str, Any]:
    """A raw DEALER: the envelope as given, after a hello and behind a delivery header when ``session``."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 3000)
    sock.connect(endpoint)
    try:
        envelope = cbor2.dumps(from_json(c["send"]))
        if c["session"]:
            sock.send(cbor2.dumps({"type": "hello", "id": 0, "v": 1}))
            welcome = cbor2.loads(sock.recv())
            sock.send(make_header(LinkKind.DATA, 1, 0, welcome["secret"], envelope))
        else:
            sock.send(envelope)
        want = c["send"].get("id")
        while True:
            frames = sock.recv_multipart()
            header = read_header(frames[0])
            if header is not None and header[0] not in (LinkKind.DATA, LinkKind.UNNUMBERED):
                continue
            reply = cbor2.loads(frames[0][HEADER_BYTES:] if header is not None else frames[0])
            if reply.get("id") == want or reply.get("type") in ("refused", "welcome"):
                return {"reply": to_json(reply)}
    except zmq.Again:
        return {"reply": {"timeout": True}}
    finally:
        sock.close(0)


def main() -> None:
    endpoint, path = sys.argv[1], sys.argv[2]
    cases = json.load(open(path, encoding="utf-8"))["cases"]
    client = Controller(endpoint=endpoint).get_client()
    for c in cases:
        if c["kind"] == "call":
            out = run_call(client, c)
        elif c["kind"] == "stream":
            out = run_stream(client, c)
        else:
            out = run_wire(endpoint, c)
        out["name"] = c["name"]
        print(json.dumps(out), flush=True)
    client.close_handler()


if __name__ == "__main__":
    main()
