"""Gateway test helpers: backends that are down or slow, a second summarizer as a canary."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.services import (  # noqa: F401  (AUTH, counter: the gateway tests import them here)
    AUTH,
    GATEWAY_KEY,
    LiveService,
    counter,
    free_port,
    start_service,
)


def dead_url() -> str:
    """A URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


def backend(url: str, version: str = "stable", weight: float = 100) -> dict[str, Any]:
    return {"url": url, "version": version, "weight": weight}


class _SlowHandler(socketserver.BaseRequestHandler):
    """Reads the request, waits ``server.delay_s``, then answers 200: a real, slow server."""

    def handle(self) -> None:
        self.request.recv(65536)
        time.sleep(self.server.delay_s)  # type: ignore[attr-defined]
        body = b'{"status": "late"}'
        self.request.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )


class SlowServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, delay_s: float) -> None:
        super().__init__(("127.0.0.1", 0), _SlowHandler)
        self.delay_s = delay_s

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _FlakyHandler(socketserver.BaseRequestHandler):
    """Ready by its probe, but every other request fails: 503, or the connection dropped."""

    def handle(self) -> None:
        request = self.request.recv(65536)
        if request.startswith(b"GET /readyz"):
            body, status = b'{"status": "ready"}', b"200 OK"
        elif self.server.mode == "drop":  # type: ignore[attr-defined]
            return  # closed without an answer
        else:
            body = b'{"error": {"code": "overloaded", "message": "queue full"}}'
            status = b"503 Service Unavailable\r\nretry-after: 1"
        self.request.sendall(
            b"HTTP/1.1 "
            + status
            + b"\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )


class FlakyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _FlakyHandler)
        self.mode = mode

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def flaky_servers() -> Iterator[tuple[FlakyServer, FlakyServer]]:
    """One replica that answers 503, one that drops connections; both look ready."""
    servers = (FlakyServer("503"), FlakyServer("drop"))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def slow_server() -> Iterator[SlowServer]:
    """Answers every request after 5 s."""
    server = SlowServer(delay_s=5.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def canary_summarizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """A second summarizer process: the "canary" (or "green") version in routing tests."""
    svc = start_service(
        "summarizer",
        tmp_path_factory.mktemp("summarizer-canary"),
        {"DOCSUM_SUMMARIZER_BATCH__MAX_WAIT_MS": "20", "DOCSUM_SUMMARIZER_TORCH_THREADS": "1"},
    )
    yield svc
    svc.stop()
