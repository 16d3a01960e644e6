"""A wrong-key flood, run as its own process so it does not share a CPU-bound event loop
with the client it is meant to slow down.

``python -m tests.reliability.flood PORT SOURCE_ADDRESS CONCURRENCY TOTAL``: TOTAL requests
with a wrong API key, CONCURRENCY keep-alive connections from SOURCE_ADDRESS (127.0.0.x) at a
time; prints a JSON line ``{"statuses": {...}, "retry_after": [...], "seconds": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections import Counter


async def _worker(
    port: int, source: str, count: int, statuses: Counter[int], retry_after: set[str]
) -> None:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    request = (
        b"POST /api/v1/summarize HTTP/1.1\r\nHost: gw\r\nX-API-Key: wrong-key-guess\r\n"
        b"Content-Type: application/json\r\nContent-Length: 13\r\n\r\n"
        b'{"text": "a"}'
    )
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ")[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"retry-after":
                    retry_after.add(value.strip().decode())
            await reader.readexactly(length)
            statuses[status] += 1
    except (ConnectionError, asyncio.IncompleteReadError):
        statuses[0] += 1  # the connection was closed on us
    finally:
        writer.close()


async def flood(port: int, source: str, concurrency: int, total: int) -> dict[str, object]:
    statuses: Counter[int] = Counter()
    retry_after: set[str] = set()
    start = time.monotonic()
    per_worker = [total // concurrency + (i < total % concurrency) for i in range(concurrency)]
    await asyncio.gather(
        *(_worker(port, source, n, statuses, retry_after) for n in per_worker if n)
    )
    return {
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "retry_after": sorted(retry_after),
        "seconds": round(time.monotonic() - start, 3),
    }


if __name__ == "__main__":
    port, source, concurrency, total = sys.argv[1:5]
    print(json.dumps(asyncio.run(flood(int(port), source, int(concurrency), int(total)))))
