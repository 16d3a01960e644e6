"""What a request may cost, in process: the gateway over fake backends (PDFs read by real
worker processes), the deadline kit, the rate limiter's costs and the idle trim (the OCR
side of cancellation is in tests/ocr/test_fairness.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from docsum.common import deadline, heap
from docsum.common.errors import ClientDisconnected, Overloaded, Timeout
from docsum.gateway.limits import BodyBudget, RateLimiter
from tests.gateway.inprocess import (
    Gateway,
    GatewayFactory,
    gateways,
)
from tests.hostile import costly
from tests.support.documents import ARTICLE, make_pdf, scanned_pdf, text_page


@pytest.fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """``make_gateway(ocr=responder, summarizer=responder, **settings)``."""
    async with gateways(tmp_path) as make:
        yield make


# --- the gateway ---------------------------------------------------------------------------


async def test_each_page_of_a_document_is_charged_to_the_rate_limit(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(rate_limit_rps=0.01, rate_limit_burst=4)
    three_pages = make_pdf([ARTICLE[:2], ARTICLE[2:4], ARTICLE[4:]])
    r = await gw.pdf(three_pages)
    assert r.status_code == 200, r.text  # 3 of the 4 tokens
    r = await gw.pdf(three_pages)  # 1 left: the key check takes it, the pages do not fit
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "3 pages" in r.json()["error"]["message"]
    assert len(gw.summarizer.calls) == 1


async def test_a_document_text_over_the_limit_is_cut_and_the_answer_says_so(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(max_text_bytes=200)
    r = await gw.pdf(make_pdf([ARTICLE, ARTICLE, ARTICLE]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["text"].encode()) <= 200
    assert sum(len(p["text"].encode()) for p in body["pages"]) <= 200
    [error] = body["errors"]
    assert error["code"] == "text_truncated" and "200 bytes" in error["message"]
    assert len(json.loads(gw.summarizer.calls[0].body)["text"].encode()) <= 200


async def test_pages_to_render_over_the_total_pixel_limit_are_refused_before_rendering(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(pdf_max_total_pixels=10_000_000, pdf_scan_dpi_range=(0.0, 0.0))
    two_scans = scanned_pdf([text_page(ARTICLE, dpi=50)] * 2, dpi=50)  # 8.4 MP each at 300 dpi
    r = await gw.pdf(two_scans)
    assert r.status_code == 413, r.text
    err = r.json()["error"]
    assert err["limit"] == "pdf_max_total_pixels" and err["allowed"] == 10_000_000
    assert err["requested"] > 10_000_000
    assert gw.ocr.calls == []


@pytest.mark.parametrize(
    ("settings", "document", "message"),
    [
        pytest.param(
            {},
            costly.lying_count_pdf,
            "page 2 of the PDF's 100 cannot be read",
            id="page-tree-promising-missing-pages",
        ),
        pytest.param(
            {"pdf_page_timeout_s": 0.3},
            costly.big_text_layer_pdf,
            "took longer than 0.3 s",
            id="step-over-its-time-limit",
        ),
    ],
)
async def test_a_pdf_that_cannot_be_read_within_the_limits_is_422(
    make_gateway: Callable[..., Gateway],
    settings: dict[str, float],
    document: Callable[[], bytes],
    message: str,
) -> None:
    gw = make_gateway(**settings)
    r = await gw.pdf(document())
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]["message"]


async def test_a_costly_text_layer_stops_its_worker_not_the_gateway(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(pdf_worker_max_rss_bytes=150 * 2**20)
    started = time.perf_counter()
    hostile = asyncio.ensure_future(gw.pdf(costly.big_text_layer_pdf()))
    await asyncio.sleep(0.2)
    normal = await gw.pdf(make_pdf([ARTICLE]))
    assert normal.status_code == 200 and not hostile.done()  # served beside it, not after it
    r = await hostile
    assert r.status_code == 422, r.text
    assert r.json()["error"]["limit"] == "pdf_worker_max_rss_bytes"
    assert time.perf_counter() - started < 30
    # The worker was replaced: the next PDF is read.
    assert (await gw.pdf(make_pdf([ARTICLE]))).status_code == 200


async def test_summarize_bodies_over_the_route_limit_are_413(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(summarize_max_body_bytes=1000)
    body = json.dumps({"text": "x" * 2000}).encode()
    r = await gw.post(
        "/api/v1/summarize", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"]["allowed"] == 1000

    async def streamed() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    r = await gw.post(
        "/api/v1/summarize", content=streamed(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.headers["connection"] == "close"
    assert gw.summarizer.calls == []


async def test_upstream_calls_carry_what_is_left_of_the_deadline(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(request_timeout_s=30)
    r = await gw.post("/api/v1/summarize", json={"text": "One. Two."})
    assert r.status_code == 200
    r = await gw.pdf(scanned_pdf([text_page(ARTICLE, dpi=50)], dpi=50))
    assert r.status_code == 200
    for call in (*gw.summarizer.calls, *gw.ocr.calls):
        assert 25 < float(call.headers["x-docsum-deadline"]) <= 30


async def test_a_request_past_its_deadline_is_504_and_the_backend_circuit_stays_closed(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(request_timeout_s=0.5)

    async def never(*_: Any) -> Any:
        await asyncio.sleep(3600)

    for upstream in gw.app.state.gateway.upstreams.values():
        upstream.transport.send = never  # a backend that never answers
    for _ in range(6):  # more than breaker_failures
        started = time.perf_counter()
        r = await gw.post("/api/v1/summarize", json={"text": "One. Two."})
        assert r.status_code == 504 and time.perf_counter() - started < 2
    summarizer = gw.app.state.gateway.upstreams["summarizer"]
    assert all(b.breaker.state.name == "CLOSED" for b in summarizer.routes.backends)


async def test_uploads_over_the_bytes_in_flight_are_503(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(max_inflight_body_bytes=1000)
    r = await gw.post(
        "/api/v1/ocr", files={"file": ("p.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 2000, "image/png")}
    )
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "uploads" in r.json()["error"]["message"] and gw.ocr.calls == []


# --- the kit -------------------------------------------------------------------------------


def test_the_rate_limiter_charges_by_cost() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=5, clock=lambda: now[0])
    assert limiter.check("a", 3) == 0
    assert limiter.check("a", 3) == 1  # 2 left: 1 s until 3
    assert limiter.check("a", 2) == 0
    now[0] = 10.0
    assert limiter.check("a", 50) == 0  # over the burst: charged as the whole burst
    assert limiter.check("a") == 1


def test_the_body_budget_refuses_what_does_not_fit_and_gives_back() -> None:
    budget = BodyBudget(100)
    with budget.hold(60):
        with pytest.raises(Overloaded), budget.hold(41):
            pass
        with budget.hold(40):
            assert budget.held == 100
    assert budget.held == 0


def test_the_deadline_header_bounds_a_services_time() -> None:
    assert deadline.budget(60, None) == 60
    assert deadline.budget(60, "2.5") == 2.5
    assert deadline.budget(1, b"30") == 1
    assert deadline.budget(60, "soon") == 60  # malformed: ignored
    with pytest.raises(Timeout, match="deadline passed"):
        deadline.budget(60, "0")


async def test_within_sets_the_deadline_and_answers_504_past_it() -> None:
    assert deadline.remaining() is None
    async with deadline.within(5, "the test"):
        left = deadline.remaining()
        assert left is not None and 4 < left <= 5
    with pytest.raises(Timeout, match=r"the test did not finish within its deadline of 0\.05 s"):
        async with deadline.within(0.05, "the test"):
            await asyncio.sleep(1)


async def test_work_is_cancelled_when_the_client_disconnects() -> None:
    gone = asyncio.Event()
    stopped = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def work() -> str:
        try:
            await asyncio.sleep(3600)
        finally:
            stopped.set()
        return "never"

    waiting = asyncio.ensure_future(deadline.cancel_on_disconnect(receive, work()))
    await asyncio.sleep(0.05)
    gone.set()
    with pytest.raises(ClientDisconnected):
        await waiting
    assert stopped.is_set()

    async def quick() -> str:
        return "done"

    assert await deadline.cancel_on_disconnect(receive, quick()) == "done"


async def test_idle_trim_runs_once_after_the_last_request() -> None:
    assert heap.trim()  # glibc
    calls = []
    trim = heap.IdleTrim(0.05)
    trim._trim = lambda loop: calls.append(loop)  # type: ignore[method-assign]
    for _ in range(3):
        trim.done()
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert len(calls) == 1
