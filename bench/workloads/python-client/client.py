"""The client side of W1py and W3apy: W1 and W3a measured with the Python client (clients/python).

    python3 client.py ping <endpoint> <round_trips> <payload_bytes>
    python3 client.py stream <endpoint> <items> <item_bytes>

Prints one JSON line of figures, the same keys the Node client's runs report."""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "clients", "python"))

from swarmnet import Controller  # noqa: E402

SETTLE_ITEMS = 16


def ping(client: object, round_trips: int, payload_bytes: int) -> dict:
    payload = b"\x5a" * payload_bytes
    assert len(client.ping(payload)) == payload_bytes  # type: ignore[attr-defined]
    lat = []
    start = time.perf_counter()
    for _ in range(round_trips):
        sent = time.perf_counter()
        reply = client.ping(payload)  # type: ignore[attr-defined]
        lat.append(time.perf_counter() - sent)
        if len(reply) != payload_bytes:
            raise RuntimeError(f"echo of {len(reply)} bytes, expected {payload_bytes}")
    total = time.perf_counter() - start
    lat.sort()
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6  # noqa: E731
    return {"p50Us": pick(0.5), "p99Us": pick(0.99), "opsPerSec": round_trips / total}


def stream(client: object, items: int, item_bytes: int) -> dict:
    def once(n: int) -> int:
        count = 0
        for ident, buf in client.stream("items", [n, item_bytes]):  # type: ignore[attr-defined]
            if ident != count or len(buf) != item_bytes:
                raise RuntimeError(f"item {count}: ident {ident}, {len(buf)} bytes")
            count += 1
        return count

    once(min(SETTLE_ITEMS, items))
    start = time.perf_counter()
    got = once(items)
    seconds = time.perf_counter() - start
    if got != items:
        raise RuntimeError(f"stream delivered {got} items, expected {items}")
    return {"itemsPerSec": got / seconds, "mbPerSec": got * item_bytes / 1e6 / seconds}


def main() -> None:
    kind, endpoint, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    client = Controller(endpoint=endpoint, timeout=60).get_client()
    try:
        figures = ping(client, n, size) if kind == "ping" else stream(client, n, size)
    finally:
        client.close_handler()
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
