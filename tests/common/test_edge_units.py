"""The edge's small parts on their own: connection caps, the tally, request ids, readiness
bodies per port, the in-flight cap, the failed-key throttle. Live floods are in
tests/reliability/test_edge.py."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from docsum.common.connections import ConnectionLimits
from docsum.common.health import Health, probe_app
from docsum.common.logs import Tally
from docsum.common.middleware import REQUEST_ID_HEADER, RequestMiddleware
from docsum.gateway.auth import FailureThrottle
from docsum.local import probe_env


def test_connection_caps_count_in_all_and_per_client() -> None:
    limits = ConnectionLimits("unit", total=5, per_client=2)
    assert [limits.admit("a") for _ in range(3)] == [True, True, False]
    assert limits.admit("b") and limits.admit("c") and limits.admit("d")
    assert not limits.admit("e")  # 5 open: the total cap
    limits.release("a")
    assert limits.admit("e") and limits.open == 5
    limits.release("e")
    limits.release("a")
    assert limits.admit("a") and limits.admit("f")  # released slots are reusable


def test_tally_logs_once_per_period(caplog: pytest.LogCaptureFixture) -> None:
    tally = Tally(logging.getLogger("unit"), "refused", every_s=60)
    with caplog.at_level(logging.WARNING, "unit"):
        for i in range(500):
            tally.add("throttled" if i else "unauthorized", f"10.0.0.{i % 3}")
    [first] = caplog.records  # the first at once, the rest held for the next line
    assert first.__dict__["counts"] == {"unauthorized": 1}
    tally._since -= 61  # the period is over: the next event writes the tally
    with caplog.at_level(logging.WARNING, "unit"):
        tally.add("throttled", "10.0.0.1")
    line = caplog.records[-1].__dict__
    assert line["counts"] == {"throttled": 500} and line["clients"] == 3


def test_failed_keys_throttled_per_address_after_the_burst() -> None:
    now = [0.0]
    throttle = FailureThrottle(limit=3, window_s=30, clock=lambda: now[0])
    assert [throttle.fail("a") for _ in range(4)] == [0, 0, 0, 10]
    assert throttle.fail("b") == 0  # another address has its own
    now[0] = 10.0  # one failure back per 10 s
    assert throttle.fail("a") == 0 and throttle.fail("a") == 10


async def _call(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}
    await app(scope, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return {"status": start["status"], "headers": dict(start["headers"]), "body": body}


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.mark.parametrize(
    ("given", "kept"), [(b"rid-42", True), (b"rid-42\n", False), (b"a" * 129, False)]
)
async def test_request_id_must_match_whole(given: bytes, kept: bool) -> None:
    app = RequestMiddleware(_ok, max_body_bytes=100)
    answer = await _call(app, "/x", [(REQUEST_ID_HEADER, given)])
    assert (answer["headers"][REQUEST_ID_HEADER] == given) is kept


async def test_requests_over_the_in_flight_cap_get_503() -> None:
    go_on, both_in = asyncio.Event(), asyncio.Event()
    arrived = 0

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            both_in.set()
        await go_on.wait()
        await _ok(scope, receive, send)

    app = RequestMiddleware(slow, max_body_bytes=100, max_in_flight=2)
    held = [asyncio.ensure_future(_call(app, "/x", [])) for _ in range(2)]
    await both_in.wait()
    refused = await _call(app, "/x", [])
    assert refused["status"] == 503 and refused["headers"][b"retry-after"] == b"1"
    go_on.set()
    assert [(await h)["status"] for h in held] == [200, 200]
    assert (await _call(app, "/x", []))["status"] == 200  # room again


async def test_probe_port_gives_reasons_and_serves_nothing_else() -> None:
    async def slow_backend() -> str:
        return "summarizer: no backend ready (http://10.1.2.3:8082: timed out)"

    health = Health(ready=True, checks=[slow_backend])
    app = probe_app(health)
    ready = await _call(app, "/readyz", [])
    assert ready["status"] == 503 and "10.1.2.3" in json.loads(ready["body"])["reasons"][0]
    assert (await _call(app, "/livez", []))["status"] == 200
    assert b"docsum_http_connections" in (await _call(app, "/metrics", []))["body"]
    assert (await _call(app, "/api/v1/summarize", []))["status"] == 404


def test_docsum_up_gives_services_on_their_usual_ports_a_probe_port() -> None:
    env = probe_env({"DOCSUM_OCR_PORT": "18181"}, ["gateway", "ocr", "summarizer"])
    assert env["DOCSUM_GATEWAY_PROBE_PORT"] == "9080"
    assert env["DOCSUM_SUMMARIZER_PROBE_PORT"] == "9082"
    assert "DOCSUM_OCR_PROBE_PORT" not in env  # moved: its usual probe port may not be free
