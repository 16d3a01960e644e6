"""Faults under load, through the gateway, with real processes on 127.0.0.1.

- kill -9 one of two OCR replicas, then restart it: no client sees a failure;
- SIGTERM one replica under load: its in-flight requests finish, new ones go to the other;
- the summarizer down: the pipeline still returns the OCR text, with a clear summary error;
- a slow upstream: 504 within the timeout, and no file, connection or memory left behind;
- SIGTERM to the gateway itself: what it had taken in is answered before it exits.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import SlowServer
from tests.reliability.load import LoadLoop, LoadReport
from tests.support.documents import page_image, png_bytes
from tests.support.pace import wait_for
from tests.support.services import (
    AUTH,
    LiveService,
    counter,
    free_port,
    start_gateway_alive,
    start_service,
)
from tests.support.stack import NO_RATE_LIMIT, OCR_ENV, ProcStats

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: No rate limit in the way of the load; a circuit re-tried after 1 s.
GATEWAY_ENV = {**NO_RATE_LIMIT, "DOCSUM_GATEWAY_OCR__BREAKER_OPEN_S": "1"}
#: Where the fault tests write their figures (docs/reliability.md quotes them).
FIGURES = Path(__file__).resolve().parents[2] / "build" / "reliability"


PAGE = png_bytes(page_image()[0])


def _record(name: str, figures: dict[str, object]) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")


def _served(svc: LiveService) -> float:
    """OCR requests this replica has answered 200 (its own metrics)."""
    return counter(svc, "docsum_http_requests_total", route="/v1/ocr", method="POST", status="200")


async def _ocr_through(client: httpx.AsyncClient, gateway: LiveService) -> httpx.Response:
    return await client.post(
        f"{gateway.url}/api/v1/ocr",
        files={"file": ("page.png", PAGE, "image/png")},
        headers=AUTH,
    )


@pytest.fixture(scope="module")
def replica_b(
    tmp_path_factory: pytest.TempPathFactory, ocr_service: LiveService
) -> Iterator[dict[str, LiveService]]:
    """A second OCR replica; the dict holds the current process (tests restart it)."""
    tmp = tmp_path_factory.mktemp("ocr-b")
    holder = {"svc": start_service("ocr", tmp, OCR_ENV)}
    yield holder
    holder["svc"].stop()


@pytest.fixture(scope="module")
def pair_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    ocr_service: LiveService,
    replica_b: dict[str, LiveService],
    summarizer_service: LiveService,
) -> Iterator[LiveService]:
    """A gateway over two OCR replicas (the session's and B) and the summarizer."""
    svc = start_gateway_alive(
        tmp_path_factory.mktemp("gateway-pair"),
        {
            "ocr": [
                {"url": ocr_service.url, "version": "stable", "weight": 100},
                {"url": replica_b["svc"].url, "version": "stable", "weight": 100},
            ],
            "summarizer": [{"url": summarizer_service.url, "version": "stable", "weight": 100}],
        },
        GATEWAY_ENV,
    )
    yield svc
    svc.stop()


def test_kill_9_one_ocr_replica_under_load_loses_no_request(
    pair_gateway: LiveService, replica_b: dict[str, LiveService], tmp_path: Path
) -> None:
    b = replica_b["svc"]
    retries_before = counter(pair_gateway, "docsum_upstream_retries_total", upstream="ocr")
    served = _served(b)
    with LoadLoop(lambda c: _ocr_through(c, pair_gateway), concurrency=6) as load:
        wait_for("replica B to take a share of the load", lambda: _served(b) >= served + 5, 30)
        b.proc.kill()  # SIGKILL: no drain, requests in flight on B are cut
        b.proc.wait(10)
        killed_at = load.report.sent
        time.sleep(2.0)  # A alone carries the load
        b = replica_b["svc"] = start_service("ocr", tmp_path, OCR_ENV, port=b.port)
        wait_for("the restarted replica B to get traffic again", lambda: _served(b) >= 3, 30)
        time.sleep(0.5)
    report: LoadReport = load.report
    retries = counter(pair_gateway, "docsum_upstream_retries_total", upstream="ocr")
    retries -= retries_before
    _record(
        "replica_kill",
        {
            "requests_sent": report.sent,
            "requests_lost": report.lost,
            "outcomes": {str(k): v for k, v in report.outcomes.items()},
            "sent_before_kill": killed_at,
            "gateway_retries": retries,
            "p99_latency_s": sorted(report.latencies_s)[int(0.99 * (len(report.latencies_s) - 1))],
            "seconds": round(report.elapsed_s, 1),
        },
    )
    assert report.lost == 0, report.summary()
    assert report.sent >= 30, report.summary()


def test_sigterm_to_one_ocr_replica_drains_it_and_loses_no_request(
    pair_gateway: LiveService, replica_b: dict[str, LiveService], tmp_path: Path
) -> None:
    b = replica_b["svc"]
    served = _served(b)
    with LoadLoop(lambda c: _ocr_through(c, pair_gateway), concurrency=6) as load:
        wait_for("replica B to take a share of the load", lambda: _served(b) >= served + 5, 30)
        b.proc.send_signal(signal.SIGTERM)
        code = b.proc.wait(40)
        time.sleep(1.0)  # new requests all go to A now
    report = load.report
    # B finished what it had: requests it logged as answered after the stop signal.
    log = b.logs()
    after_stop = log[log.index("stop signal received") :]
    drained = len(re.findall(r'"path": "/v1/ocr", "status": 200', after_stop))
    _record(
        "replica_sigterm",
        {
            "requests_sent": report.sent,
            "requests_lost": report.lost,
            "answered_by_b_while_draining": drained,
            "b_exit_code": code,
        },
    )
    assert report.lost == 0, report.summary()
    assert code in (0, -signal.SIGTERM)
    assert drained >= 1, "B had no request in flight when stopped: the test proved nothing"
    replica_b["svc"] = start_service("ocr", tmp_path, OCR_ENV, port=b.port)


def test_summarizer_down_still_returns_the_ocr_text(
    tmp_path_factory: pytest.TempPathFactory, ocr_service: LiveService
) -> None:
    gateway = start_gateway_alive(
        tmp_path_factory.mktemp("gateway-no-summarizer"),
        {
            "ocr": [{"url": ocr_service.url, "version": "stable", "weight": 100}],
            "summarizer": [
                {"url": f"http://127.0.0.1:{free_port()}", "version": "stable", "weight": 100}
            ],
        },
        GATEWAY_ENV,
    )
    try:
        r = httpx.post(
            f"{gateway.url}/api/v1/documents:summarize",
            files={"file": ("page.png", PAGE, "image/png")},
            headers=AUTH,
            timeout=60,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert "quick brown fox" in body["text"].lower()
        assert body["summary"] is None
        [error] = body["errors"]
        assert error["stage"] == "summarize" and error["upstream"] == "summarizer"
        assert error["status"] == 503 and "summarizer" in error["message"]
        # The summarize route alone says the same, as an error of its own.
        r = httpx.post(
            f"{gateway.url}/api/v1/summarize", json={"text": "A text."}, headers=AUTH, timeout=30
        )
        assert r.status_code == 503
        assert "summarizer" in r.json()["error"]["message"]
    finally:
        gateway.stop()


def test_slow_upstream_gets_504_in_time_and_leaks_nothing(
    tmp_path_factory: pytest.TempPathFactory, summarizer_service: LiveService
) -> None:
    slow = SlowServer(delay_s=5.0)
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    timeout_s = 1.0
    gateway = start_gateway_alive(
        tmp_path_factory.mktemp("gateway-slow"),
        {
            "ocr": [{"url": slow.url, "version": "stable", "weight": 100}],
            "summarizer": [{"url": summarizer_service.url, "version": "stable", "weight": 100}],
        },
        {
            **GATEWAY_ENV,
            "DOCSUM_GATEWAY_OCR__TIMEOUT_S": str(timeout_s),
            # Keep calling the slow backend (no circuit opened) so every call times out.
            "DOCSUM_GATEWAY_OCR__BREAKER_FAILURES": "100000",
        },
    )

    async def burst(n: int) -> list[tuple[int, float]]:
        async def one(client: httpx.AsyncClient) -> tuple[int, float]:
            t0 = time.monotonic()
            r = await _ocr_through(client, gateway)
            return r.status_code, time.monotonic() - t0

        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(one(client) for _ in range(n)))

    try:
        asyncio.run(burst(20))  # warm up: pools, buffers, lazy imports
        time.sleep(0.5)
        before = ProcStats.of(gateway.proc.pid)
        answers = []
        for _ in range(5):
            answers += asyncio.run(burst(20))
        time.sleep(0.5)
        after = ProcStats.of(gateway.proc.pid)
    finally:
        gateway.stop()
        slow.shutdown()
        slow.server_close()
    _record(
        "slow_upstream",
        {
            "requests": len(answers),
            "statuses": sorted({s for s, _ in answers}),
            "slowest_answer_s": round(max(t for _, t in answers), 3),
            "timeout_s": timeout_s,
            "before": before.to_dict(),
            "after": after.to_dict(),
        },
    )
    assert {s for s, _ in answers} == {504}
    assert all(timeout_s - 0.05 <= t <= timeout_s + 1.0 for _, t in answers), answers
    assert after.open_fds <= before.open_fds + 2, (before, after)
    assert after.tcp_connections <= before.tcp_connections + 2, (before, after)
    assert after.rss_bytes - before.rss_bytes < 10 * 1024 * 1024, (before, after)


def test_sigterm_to_the_gateway_answers_what_it_took_in(
    tmp_path_factory: pytest.TempPathFactory, ocr_service: LiveService
) -> None:
    gateway = start_gateway_alive(
        tmp_path_factory.mktemp("gateway-drain"),
        {
            "ocr": [{"url": ocr_service.url, "version": "stable", "weight": 100}],
            "summarizer": [{"url": ocr_service.url, "version": "stable", "weight": 100}],
        },
        GATEWAY_ENV,
    )
    with LoadLoop(lambda c: _ocr_through(c, gateway), concurrency=4) as load:
        wait_for("the gateway to serve", lambda: load.report.ok >= 4, 30)
        gateway.proc.send_signal(signal.SIGTERM)
        code = gateway.proc.wait(40)
        time.sleep(0.3)
    report = load.report
    # Every request the gateway had taken in was answered; after it stopped listening,
    # clients could not connect (in a cluster, the Service sends them to another replica).
    assert set(report.outcomes) <= {200, "ConnectError"}, report.summary()
    assert code in (0, -signal.SIGTERM)
    assert "Finished server process" in gateway.logs()
