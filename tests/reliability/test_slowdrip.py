"""Slow-drip clients: headers or bodies sent a few bytes a second must not hold a server.

uvicorn bounds neither the time a request's headers take nor its body's; the kit does
(``header_timeout_s``: the connection is closed; ``body_timeout_s``: 408 with a message). The
gateway is the service on the internet's edge, and runs the same kit as the others; it is
tested here with deadlines of 2 s over backends that are down (no model to load).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.support.services import (
    GATEWAY_KEY,
    LiveService,
    free_port,
    spawn,
    start_gateway_alive,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEADLINE_S = 2.0


@pytest.fixture(scope="module")
def strict_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    down = f"http://127.0.0.1:{free_port()}"
    svc = start_gateway_alive(
        tmp_path_factory.mktemp("gateway-drip"),
        {
            "ocr": [{"url": down, "version": "stable", "weight": 100}],
            "summarizer": [{"url": down, "version": "stable", "weight": 100}],
        },
        {
            "DOCSUM_GATEWAY_BODY_TIMEOUT_S": str(DEADLINE_S),
            "DOCSUM_GATEWAY_HEADER_TIMEOUT_S": str(DEADLINE_S),
        },
    )  # not ready (its upstreams are down), but alive
    yield svc
    svc.stop()


def _head(path: str, length: int, content_type: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nX-API-Key: {GATEWAY_KEY}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def _drip(
    port: int, first: bytes, drip: bytes, every_s: float, give_up_s: float
) -> tuple[float, bytes]:
    """Send ``first``, then ``drip`` a byte every ``every_s`` s; return (seconds until the
    server answered or closed, what it sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    writer.write(first)
    answer = b""

    async def read_all() -> None:
        nonlocal answer
        while chunk := await reader.read(65536):
            answer += chunk

    reading = asyncio.ensure_future(read_all())
    try:
        for byte in drip:
            if reading.done() or time.monotonic() - start > give_up_s:
                break
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.wait([reading], timeout=every_s)
        await asyncio.wait_for(reading, max(0.1, give_up_s - (time.monotonic() - start)))
    except (TimeoutError, ConnectionError):
        pass
    finally:
        reading.cancel()
        writer.close()
    return time.monotonic() - start, answer


def _status_and_body(answer: bytes) -> tuple[int, dict[str, object], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body), head.lower()


@pytest.mark.parametrize(
    ("path", "content_type", "first_bytes"),
    [
        (
            "/api/v1/documents:summarize",
            "multipart/form-data; boundary=xyz",
            b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n%PDF-',
        ),
        ("/api/v1/summarize", "application/json", b'{"text": "'),
    ],
    ids=["multipart", "json"],
)
def test_slow_body_gets_408_at_the_deadline(
    strict_gateway: LiveService, path: str, content_type: str, first_bytes: bytes
) -> None:
    took, answer = asyncio.run(
        _drip(
            strict_gateway.port,
            _head(path, 100_000, content_type) + first_bytes,
            b"a" * 1000,
            every_s=0.3,
            give_up_s=DEADLINE_S + 8,
        )
    )
    assert answer, f"no answer within {took:.1f} s"
    status, body, head = _status_and_body(answer)
    assert status == 408, answer[:500]
    assert body["error"]["code"] == "request_timeout"  # type: ignore[index]
    assert b"connection: close" in head
    assert DEADLINE_S - 0.2 <= took <= DEADLINE_S + 2


def test_slow_headers_get_the_connection_closed(strict_gateway: LiveService) -> None:
    took, answer = asyncio.run(
        _drip(
            strict_gateway.port,
            b"POST /api/v1/summarize HTTP/1.1\r\nHost: test\r\n",
            b"X-Slow: " + b"a" * 1000,
            every_s=0.3,
            give_up_s=DEADLINE_S + 8,
        )
    )
    assert answer == b"" and took <= DEADLINE_S + 2, (took, answer[:300])


def _open_sockets(svc: LiveService) -> int:
    return len(psutil.Process(svc.proc.pid).net_connections(kind="tcp"))


def test_a_crowd_of_drippers_is_shed_and_the_server_keeps_answering(
    strict_gateway: LiveService,
) -> None:
    before = _open_sockets(strict_gateway)
    crowd = 150

    async def scenario() -> tuple[list[tuple[float, bytes]], list[float]]:
        head = _head("/api/v1/summarize", 100_000, "application/json")
        drippers = [
            _drip(strict_gateway.port, head, b"a" * 500, 0.5, DEADLINE_S + 10)
            for _ in range(crowd // 2)
        ] + [
            _drip(strict_gateway.port, b"GET /livez HTTP/1.1\r\n", b"X" * 500, 0.5, DEADLINE_S + 10)
            for _ in range(crowd // 2)
        ]
        tasks = [asyncio.ensure_future(d) for d in drippers]
        await asyncio.sleep(0.5)  # all connected and dripping
        latencies = []
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(5):  # meanwhile, an honest client is served at once
                t = time.monotonic()
                r = await client.get(f"{strict_gateway.url}/livez")
                latencies.append(time.monotonic() - t)
                assert r.status_code == 200
        return await asyncio.gather(*tasks), latencies

    results, latencies = asyncio.run(scenario())
    assert max(latencies) < 0.5, latencies
    assert all(took <= DEADLINE_S + 3 for took, _ in results), sorted(t for t, _ in results)[-5:]
    assert sum(a.startswith(b"HTTP/1.1 408") for _, a in results) == crowd // 2
    # Every dripper's connection is gone from the server again.
    deadline = time.monotonic() + 5
    while _open_sockets(strict_gateway) > before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _open_sockets(strict_gateway) <= before + 2


def test_an_honest_upload_in_pieces_and_keep_alive_still_work(strict_gateway: LiveService) -> None:
    async def scenario() -> list[int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", strict_gateway.port)
        statuses = []
        body = b'{"text": "' + b"word " * 2000 + b'"}'
        for _ in range(3):  # three requests on one kept-alive connection
            writer.write(_head("/api/v1/summarize", len(body), "application/json"))
            for i in range(0, len(body), len(body) // 3 + 1):  # the body in three pieces
                writer.write(body[i : i + len(body) // 3 + 1])
                await writer.drain()
                await asyncio.sleep(0.4)  # well inside the deadline in all
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(
                line.split(b":")[1] for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ))  # fmt: skip
            await reader.readexactly(length)
            statuses.append(int(head.split(b" ")[1]))
            await asyncio.sleep(0.5)
        writer.close()
        return statuses

    # The summarizer behind it is down: 503 is the honest answer, but never a 408.
    assert asyncio.run(scenario()) == [503, 503, 503]


@pytest.fixture(scope="module", params=["h11", "auto"])
def kit_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """The kit alone under each of uvicorn's HTTP protocols (h11 in the model services'
    images, httptools where the gateway's extra installs it)."""
    port = free_port()
    log = tmp_path_factory.mktemp("kit") / "kit.log"
    command = [sys.executable, "-m", "tests.reliability.kit_app", str(port), request.param]
    kit = spawn("kit", command, port, log)
    try:
        kit.wait_ready(60)
        yield port
    finally:
        kit.stop()


def test_kit_deadlines_hold_under_both_http_protocols(kit_service: int) -> None:
    head = (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    took, answer = asyncio.run(_drip(kit_service, head, b"a" * 100, 0.3, DEADLINE_S + 8))
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert took <= DEADLINE_S + 2
    took, answer = asyncio.run(
        _drip(kit_service, b"POST /echo HTTP/1.1\r\n", b"X-Slow: " + b"a" * 100, 0.3, 12)
    )
    assert answer == b"" and took <= DEADLINE_S + 2
    r = httpx.post(f"http://127.0.0.1:{kit_service}/echo", json={"ok": 1}, timeout=5)
    assert r.status_code == 200 and r.json() == {"ok": 1}
