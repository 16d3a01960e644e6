"""The client mode against a stand-in gateway on 127.0.0.1: retries, Retry-After, exit codes,
input order, and no model library imported (the real gateway: tests/integration)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from docsum.client import AuthError, Exit, Gateway, Unreachable, ordered_map, retry_after_s
from tests.cli.no_torch import docsum_without_torch
from tests.support.services import free_port

Reply = tuple[int, dict[str, str], dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    server: _FakeGateway

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with self.server.lock:
            self.server.seen.append((self.path, self.headers.get("x-api-key"), body))
            reply = self.server.script.pop(0) if self.server.script else None
        status, headers, payload = reply or self.server.answer(self.path, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        for k, v in {**headers, "content-type": "application/json"}.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": "r"}}


class _FakeGateway(ThreadingHTTPServer):
    """Answers summarize with the text's first sentence after a random short delay; a text
    containing 'unreadable' gets a 422. ``script`` replies come first, in order."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str | None, bytes]] = []
        self.script: list[Reply] = []

    def answer(self, path: str, body: bytes) -> Reply:
        time.sleep(random.uniform(0, 0.03))  # answers come back out of order
        text = json.loads(body)["text"]
        if "unreadable" in text:
            return 422, {}, _error(422, "invalid_input", "text has no sentence")
        first = text.split(". ")[0].rstrip(".") + "."
        return 200, {}, {"summary": first, "sentences": [{"index": 0, "text": first}]}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def fake() -> Iterator[_FakeGateway]:
    server = _FakeGateway()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_retry_after_is_seconds_or_a_date() -> None:
    assert retry_after_s("3") == 3.0
    assert retry_after_s(formatdate(1000.0 + 7, usegmt=True), now=1000.0) == 7.0
    assert retry_after_s(formatdate(900.0, usegmt=True), now=1000.0) == 0.0
    assert retry_after_s("soon") is None and retry_after_s(None) is None


def test_503_and_429_are_retried_after_what_retry_after_says(fake: _FakeGateway) -> None:
    waits: list[float] = []
    fake.script = [
        (503, {"retry-after": "2"}, _error(503, "overloaded", "queue full")),
        (429, {"retry-after": "1"}, _error(429, "rate_limited", "slow down")),
    ]
    gateway = Gateway(fake.url, "k", retries=3, sleep=waits.append)
    answer = gateway.post("/api/v1/summarize", json={"text": "One. Two."})
    assert answer.ok and answer.body is not None and answer.body["summary"] == "One."
    assert waits == [2.0, 1.0] and len(fake.seen) == 3
    assert all(key == "k" for _, key, _ in fake.seen)


def test_a_503_after_every_retry_says_unavailable(fake: _FakeGateway) -> None:
    waits: list[float] = []
    fake.script = [(503, {}, _error(503, "overloaded", "queue full"))] * 3
    answer = Gateway(fake.url, "k", retries=2, sleep=waits.append).post("/x", json={})
    assert answer.exit == Exit.UNAVAILABLE and answer.error == "HTTP 503 overloaded: queue full"
    assert len(waits) == 2 and all(0 < w <= 8 for w in waits)  # backoff without Retry-After


def test_a_refused_key_and_an_absent_gateway_stop_the_run(fake: _FakeGateway) -> None:
    fake.script = [(401, {}, _error(401, "unauthorized", "unknown API key"))]
    with pytest.raises(AuthError, match="401 unauthorized"):
        Gateway(fake.url, "wrong", sleep=lambda _: None).post("/x", json={})
    waits: list[float] = []
    absent = Gateway(f"http://127.0.0.1:{free_port()}", "k", retries=2, sleep=waits.append)
    with pytest.raises(Unreachable, match="cannot reach"):
        absent.post("/x", json={})
    assert len(waits) == 2


def test_ordered_map_keeps_input_order() -> None:
    def slow(n: int) -> int:
        time.sleep(random.uniform(0, 0.01))
        return n * n

    assert list(ordered_map(slow, range(50), jobs=8)) == [n * n for n in range(50)]


def test_summarize_jsonl_through_a_gateway_without_model_libraries(
    fake: _FakeGateway, tmp_path: Path
) -> None:
    rows = [{"id": i, "text": f"Sentence {i} here. And more."} for i in range(20)]
    rows[7]["text"] = "An unreadable text"
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    out = docsum_without_torch(
        "--url", fake.url, "--api-key", "k", "summarize", "--jsonl", str(path), "-j", "4",
        timeout=60,
    )  # fmt: skip
    assert out.returncode == Exit.FAILED, out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert [g["id"] for g in got] == [*range(20), 21]
    assert got[3] == {"id": 3, "summary": "Sentence 3 here."}
    assert got[7]["error"] == "HTTP 422 invalid_input: text has no sentence"
    assert "not JSON" in got[20]["error"]
    assert "summarize: 21/21 docs, in" in out.stderr and "2 failed" in out.stderr
    assert len(fake.seen) == 20  # the line that is not JSON is never sent


def test_exit_codes_say_what_failed(fake: _FakeGateway, tmp_path: Path) -> None:
    text = tmp_path / "a.txt"
    text.write_text("First one. Second one.")
    fake.script = [(401, {}, _error(401, "unauthorized", "unknown API key"))]
    out = docsum_without_torch("--url", fake.url, "--api-key", "bad", "summarize", str(text))
    assert out.returncode == Exit.AUTH and "refused the API key" in out.stderr
    gone = f"http://127.0.0.1:{free_port()}"
    out = docsum_without_torch(
        "--url", gone, "--api-key", "k", "--retries", "0", "summarize", str(text)
    )
    assert out.returncode == Exit.UNAVAILABLE and "cannot reach" in out.stderr
    out = docsum_without_torch("--url", fake.url, "--api-key", "k", "summarize", str(text))
    assert out.returncode == Exit.OK and out.stdout == "First one.\n"
