"""Upstreams that are down, slow or flaky: 503/504 naming the upstream, retries to another
replica, circuit breaking, and a summary failure that keeps the document's text."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import LiveService, start_gateway
from tests.gateway.conftest import AUTH, FlakyServer, SlowServer, backend, counter, dead_url
from tests.gateway.documents import ARTICLE, make_pdf, png_bytes, text_page

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXT = " ".join(ARTICLE)


@pytest.fixture(scope="module")
def summarizer_down(
    tmp_path_factory: pytest.TempPathFactory, ocr_service: LiveService
) -> Iterator[LiveService]:
    """OCR works, the summarizer's only backend refuses connections."""
    gw = start_gateway(
        tmp_path_factory.mktemp("gw-down"),
        {"ocr": [backend(ocr_service.url)], "summarizer": [backend(dead_url())]},
        {"DOCSUM_GATEWAY_SUMMARIZER__BREAKER_FAILURES": "6"},
        wait=False,
    )
    _wait_live(gw)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def upstreams_slow(
    tmp_path_factory: pytest.TempPathFactory, slow_server: SlowServer
) -> Iterator[LiveService]:
    """Both upstreams answer after 5 s; the gateway waits 1 s."""
    gw = start_gateway(
        tmp_path_factory.mktemp("gw-slow"),
        {"ocr": [backend(slow_server.url)], "summarizer": [backend(slow_server.url)]},
        {
            "DOCSUM_GATEWAY_SUMMARIZER__TIMEOUT_S": "1",
            "DOCSUM_GATEWAY_OCR__TIMEOUT_S": "1",
            "DOCSUM_GATEWAY_PROBE_TIMEOUT_S": "0.2",
        },
        wait=False,
    )
    _wait_live(gw)
    yield gw
    gw.stop()


def _wait_live(gw: LiveService) -> None:
    for _ in range(100):
        try:
            if httpx.get(f"{gw.url}/livez", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(gw.logs())


def test_upstream_down_is_503_naming_it(summarizer_down: LiveService) -> None:
    start = time.perf_counter()
    r = httpx.post(
        f"{summarizer_down.url}/api/v1/summarize", json={"text": TEXT}, headers=AUTH, timeout=30
    )
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "upstream_unavailable" and err["upstream"] == "summarizer"
    assert err["message"].startswith("summarizer: cannot reach a backend")
    assert time.perf_counter() - start < 3  # two quick retries, not a hang
    time.sleep(1.2)  # a probe round has seen it
    ready = httpx.get(f"{summarizer_down.url}/readyz", timeout=5)
    # The reasons (they name backend URLs) are on the probe port and in the log only.
    assert ready.status_code == 503 and ready.json() == {"status": "degraded"}
    assert "summarizer: no backend ready" in summarizer_down.logs()


def test_summary_failure_keeps_the_ocr_text(summarizer_down: LiveService) -> None:
    png = png_bytes(text_page(ARTICLE))
    r = httpx.post(
        f"{summarizer_down.url}/api/v1/documents:summarize",
        files={"file": ("scan.png", png, "image/png")},
        headers=AUTH,
        timeout=120,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["summary"] is None
    assert "council" in body["text"].lower() and body["pages"][0]["source"] == "ocr"
    [error] = body["errors"]
    assert error["stage"] == "summarize" and error["status"] == 503
    assert error["upstream"] == "summarizer" and "cannot reach" in error["message"]


def test_circuit_opens_after_repeated_failures(summarizer_down: LiveService) -> None:
    for _ in range(4):  # each request makes 3 attempts; 6 consecutive failures open it
        httpx.post(f"{summarizer_down.url}/api/v1/summarize", json={"text": TEXT}, headers=AUTH)
    metric = counter(
        summarizer_down, "docsum_upstream_circuit_open", upstream="summarizer", version="stable"
    )
    assert metric == 1.0
    start = time.perf_counter()
    r = httpx.post(
        f"{summarizer_down.url}/api/v1/summarize", json={"text": TEXT}, headers=AUTH, timeout=10
    )
    assert r.status_code == 503 and "circuit open" in r.json()["error"]["message"]
    assert "retry-after" in r.headers
    assert time.perf_counter() - start < 1.0  # refused at once, no connection attempted


def test_upstream_slow_is_504_within_the_timeout(upstreams_slow: LiveService) -> None:
    for path, kwargs in (
        ("/api/v1/summarize", {"json": {"text": TEXT}}),
        ("/api/v1/ocr", {"files": {"file": ("p.png", png_bytes(text_page(["Slow."])))}}),
    ):
        start = time.perf_counter()
        r = httpx.post(f"{upstreams_slow.url}{path}", headers=AUTH, timeout=30, **kwargs)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
        assert r.status_code == 504, r.text
        err = r.json()["error"]
        assert err["code"] == "upstream_timeout"
        assert err["upstream"] == ("ocr" if path.endswith("ocr") else "summarizer")
        assert "no answer within 1 s" in err["message"]
        assert 1.0 <= elapsed < 3.0  # the gateway's 1 s, not the upstream's 5 s


def test_pdf_with_text_layer_keeps_text_when_summarizer_is_slow(
    upstreams_slow: LiveService,
) -> None:
    r = httpx.post(
        f"{upstreams_slow.url}/api/v1/documents:summarize",
        files={"file": ("doc.pdf", make_pdf([ARTICLE]), "application/pdf")},
        headers=AUTH,
        timeout=30,
    )
    assert r.status_code == 200
    body = r.json()
    assert body["text"] == "\n".join(ARTICLE) and body["summary"] is None
    assert body["errors"][0]["code"] == "upstream_timeout"


def test_503_and_connection_errors_are_retried_on_another_replica(
    tmp_path_factory: pytest.TempPathFactory,
    summarizer_service: LiveService,
    flaky_servers: tuple[FlakyServer, FlakyServer],
) -> None:
    overloaded, dropping = flaky_servers
    gw = start_gateway(
        tmp_path_factory.mktemp("gw-retry"),
        {
            "ocr": [backend(summarizer_service.url)],
            "summarizer": [
                backend(overloaded.url),
                backend(dropping.url),
                backend(summarizer_service.url),
            ],
        },
        {
            "DOCSUM_GATEWAY_SUMMARIZER__BREAKER_FAILURES": "1000",  # keep picking the bad ones
            "DOCSUM_GATEWAY_SUMMARIZER__RETRIES": "2",
        },
    )
    try:
        with httpx.Client(headers=AUTH, timeout=30) as client:
            codes = [
                client.post(f"{gw.url}/api/v1/summarize", json={"text": "x"}).status_code
                for _ in range(30)
            ]
        # Two retries, each to a replica not tried yet: the good one is always reached.
        assert codes == [200] * 30

        def count(status: str) -> float:
            return counter(
                gw, "docsum_upstream_requests_total", upstream="summarizer", status=status
            )

        assert count("200") == 30
        assert count("503") > 0 and count("error") > 0  # both kinds of failure were met...
        retries = counter(gw, "docsum_upstream_retries_total", upstream="summarizer")
        assert retries == count("503") + count("error")  # ...and each one was retried
    finally:
        gw.stop()
