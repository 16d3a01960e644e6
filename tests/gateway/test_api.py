"""The gateway in front of the real OCR and summarizer services on 127.0.0.1."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.conftest import LiveService
from tests.gateway.conftest import AUTH, counter
from tests.gateway.documents import (
    ARTICLE,
    make_pdf,
    png_bytes,
    scanned_pdf,
    text_page,
    tiff_bytes,
)
from tests.support.services import summarize_document

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXT = " ".join(ARTICLE)
PDF = "application/pdf"
#: Words OCR must get back from a page of ARTICLE (it reads clean print near-perfectly).
WORDS = ("council", "budget", "schools", "teachers", "mayor", "harbour")


def _words_found(text: str) -> int:
    return sum(word in text.lower() for word in WORDS)


def _post(gw: LiveService, path: str, **kwargs: object) -> httpx.Response:
    headers = {**AUTH, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return httpx.post(f"{gw.url}{path}", headers=headers, timeout=120, **kwargs)  # type: ignore[arg-type]


def test_summarize_goes_through_with_the_request_id(
    gateway_service: LiveService, summarizer_service: LiveService
) -> None:
    r = _post(
        gateway_service,
        "/api/v1/summarize",
        json={"text": TEXT, "max_sentences": 2},
        headers={"X-Request-ID": "gw-test-rid-0001"},
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["sentences"]) == 2
    assert r.headers["x-docsum-backend"] == "stable"
    assert r.headers["x-request-id"] == "gw-test-rid-0001"
    # The summarizer logged the same request id: it was propagated upstream. Its access line
    # is written once the answer has left, so it may come a moment after the answer.
    deadline = time.monotonic() + 10.0
    while "gw-test-rid-0001" not in summarizer_service.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "gw-test-rid-0001" in summarizer_service.logs()
    # Client errors of the upstream come back as they are (422 with its message).
    r = _post(gateway_service, "/api/v1/summarize", json={"text": " "})
    assert r.status_code == 422 and "text is empty" in r.json()["error"]["message"]
    # The pass-through lane answers under the route's name, like every routed request.
    ok = {"route": "/api/v1/summarize", "method": "POST", "status": "200"}
    assert counter(gateway_service, "docsum_http_requests_total", **ok) >= 1
    # A JSON media type with parameters is still JSON; a malformed pin is the gateway's 400.
    r = _post(
        gateway_service,
        "/api/v1/summarize",
        content=b'{"text": "One sentence here."}',
        headers={"content-type": "Application/JSON; charset=utf-8", "X-Docsum-Backend": "x="},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    assert r.headers["x-request-id"] == r.json()["error"]["request_id"]


def test_api_key_required(gateway_service: LiveService) -> None:
    url = f"{gateway_service.url}/api/v1/summarize"
    before = counter(gateway_service, "docsum_gateway_auth_failures_total")
    refused = {"route": "/api/v1/summarize", "method": "POST", "status": "401"}
    counted = counter(gateway_service, "docsum_http_requests_total", **refused)
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(url, json={"text": TEXT}, headers=headers, timeout=30)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
        assert "X-API-Key" in r.json()["error"]["message"]
    key = AUTH["X-API-Key"]
    r = httpx.post(url, json={"text": TEXT}, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200
    assert counter(gateway_service, "docsum_gateway_auth_failures_total") == before + 3
    # Refused before routing, yet counted under the route's template (not "unmatched").
    assert counter(gateway_service, "docsum_http_requests_total", **refused) == counted + 3
    assert key not in (gateway_service.logs())  # the key is never logged


def test_unsupported_content_is_415(gateway_service: LiveService) -> None:
    r = _post(
        gateway_service, "/api/v1/summarize", content=TEXT, headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    r = _post(
        gateway_service,
        "/api/v1/documents:summarize",
        files={"file": ("a.txt", TEXT.encode(), "text/plain")},
    )
    assert r.status_code == 415 and "PDF, PNG" in r.json()["error"]["message"]
    # The bytes decide, not the name or the claimed type: a GIF named .png is refused.
    gif = b"GIF89a" + b"\0" * 100
    r = _post(gateway_service, "/api/v1/ocr", files={"file": ("a.png", gif, "image/png")})
    assert r.status_code == 415
    r = _post(
        gateway_service,
        "/api/v1/ocr",
        files={"file": ("a.pdf", make_pdf([ARTICLE]), "application/pdf")},
    )
    assert r.status_code == 415 and "documents:summarize" in r.json()["error"]["message"]
    r = _post(gateway_service, "/api/v1/documents:summarize", json={"file": "x"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]["message"]


def test_ocr_route(gateway_service: LiveService) -> None:
    r = _post(
        gateway_service,
        "/api/v1/ocr",
        files={"file": ("p.png", png_bytes(text_page(ARTICLE)), "image/png")},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["pages"][0]["lines"] and _words_found(body["text"]) >= 5


def test_pipeline_on_an_image(gateway_service: LiveService) -> None:
    png = png_bytes(text_page(ARTICLE))
    body = summarize_document(
        gateway_service.url, ("scan.png", png, "image/png"), max_sentences="2"
    )
    assert [(p["number"], p["source"]) for p in body["pages"]] == [(1, "ocr")]
    assert _words_found(body["text"]) >= 5
    assert body["summary"] and body["errors"] == []
    assert len(re.findall(r"[.!?](\s|$)", body["summary"])) <= 2
    assert set(body["timings_ms"]) >= {"ocr", "summarize", "total"}
    assert body["backends"] == {"ocr": "stable", "summarizer": "stable"}


def test_pipeline_on_a_multi_page_tiff(gateway_service: LiveService) -> None:
    tiff = tiff_bytes([text_page(ARTICLE), text_page(ARTICLE[::-1])])
    pages = summarize_document(gateway_service.url, ("scan.tif", tiff, "image/tiff"))["pages"]
    assert [(p["number"], p["source"]) for p in pages] == [(1, "ocr"), (2, "ocr")]
    assert "council" in pages[0]["text"].lower().split("\n")[0]
    assert "harbour" in pages[1]["text"].lower().split("\n")[0]  # page 2 starts reversed


def test_pipeline_on_a_pdf_with_a_text_layer(gateway_service: LiveService) -> None:
    pdf = make_pdf([ARTICLE[:3], ARTICLE[3:]])
    body = summarize_document(gateway_service.url, ("doc.pdf", pdf, PDF), max_sentences="1")
    assert [(p["number"], p["source"]) for p in body["pages"]] == [
        (1, "text-layer"),
        (2, "text-layer"),
    ]
    assert body["text"] == "\n".join(ARTICLE[:3]) + "\n\n" + "\n".join(ARTICLE[3:])
    assert body["summary"] in ARTICLE
    assert "ocr" not in body["backends"]  # no page needed OCR


def test_pipeline_on_a_scanned_pdf_and_a_mixed_one(gateway_service: LiveService) -> None:
    scanned = scanned_pdf([text_page(ARTICLE), text_page(ARTICLE[::-1])])
    body = summarize_document(gateway_service.url, ("scan.pdf", scanned, PDF))
    assert [(p["number"], p["source"]) for p in body["pages"]] == [(1, "ocr"), (2, "ocr")]
    assert all(_words_found(p["text"]) >= 5 for p in body["pages"])
    assert body["summary"] and body["timings_ms"]["ocr"] > 0
    assert "render" not in body["timings_ms"]  # 300 dpi scanner JPEGs go to OCR as they are
    mixed = make_pdf([ARTICLE[:3], text_page(ARTICLE, dpi=150)])
    body = summarize_document(gateway_service.url, ("mixed.pdf", mixed, PDF))
    pages = body["pages"]
    assert [(p["number"], p["source"]) for p in pages] == [(1, "text-layer"), (2, "ocr")]
    assert _words_found(pages[1]["text"]) >= 5
    assert body["timings_ms"]["render"] > 0  # a 150 dpi scan is rendered at 300 dpi


def test_pdf_limits_are_422_with_a_reason(gateway_service: LiveService) -> None:
    locked = make_pdf([ARTICLE], encrypt=True)
    r = _post(
        gateway_service,
        "/api/v1/documents:summarize",
        files={"file": ("x.pdf", locked, "application/pdf")},
    )
    assert r.status_code == 422 and "password" in r.json()["error"]["message"]
    long = make_pdf([["page"]] * 101)
    r = _post(
        gateway_service,
        "/api/v1/documents:summarize",
        files={"file": ("x.pdf", long, "application/pdf")},
    )
    assert r.status_code == 422 and "101 pages; the limit is 100" in r.json()["error"]["message"]
    r = _post(
        gateway_service,
        "/api/v1/documents:summarize",
        files={"file": ("x.pdf", make_pdf([ARTICLE]))},
        data={"ratio": "2"},
    )
    assert r.status_code == 422 and "ratio" in r.json()["error"]["message"]


def test_one_mistake_gets_one_answer_on_every_route(gateway_service: LiveService) -> None:
    # max_sentences=0: the JSON route (validated by the summarizer) and the upload route
    # (validated by the gateway) answer the same status, code and field message.
    answers = [
        _post(gateway_service, "/api/v1/summarize", json={"text": TEXT, "max_sentences": 0}),
        _post(
            gateway_service,
            "/api/v1/documents:summarize",
            files={"file": ("x.pdf", make_pdf([ARTICLE]), "application/pdf")},
            data={"max_sentences": "0"},
        ),
    ]
    assert {r.status_code for r in answers} == {422}
    assert {r.json()["error"]["code"] for r in answers} == {"invalid_input"}
    messages = [r.json()["error"]["message"] for r in answers]
    assert all("max_sentences: Input should be greater than or equal to 1" in m for m in messages)


def test_probes_metrics_and_docs(gateway_service: LiveService) -> None:
    assert httpx.get(f"{gateway_service.url}/readyz", timeout=5).status_code == 200
    assert httpx.get(f"{gateway_service.url}/livez", timeout=5).status_code == 200
    metrics = httpx.get(f"{gateway_service.url}/metrics", timeout=5).text
    assert (
        'docsum_upstream_requests_total{status="200",upstream="summarizer",version="stable"}'
        in metrics
    )
    assert 'docsum_upstream_circuit_open{upstream="ocr",version="stable"} 0.0' in metrics
    assert "docsum_upstream_request_duration_seconds_bucket" in metrics
    spec = httpx.get(f"{gateway_service.url}/openapi.json", timeout=5).json()
    assert {"/api/v1/summarize", "/api/v1/ocr", "/api/v1/documents:summarize"} <= set(spec["paths"])
    assert httpx.get(f"{gateway_service.url}/docs", timeout=5).status_code == 200
