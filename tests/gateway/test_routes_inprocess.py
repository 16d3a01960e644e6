"""The gateway's routes and document pipeline in process, over fake upstreams.

The whole gateway app runs (key check, pass-through lane, routes, pipeline, the upstream calls
with their retries and circuits, the error table); only the network exchange with a backend is
replaced by :class:`FakeBackends`, which answers as a service would. Fast, so every answer
the routes can give is covered here; ``test_api.py`` and ``test_failures.py`` run the same
paths against real processes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image
from prometheus_client import REGISTRY

from docsum.gateway.pins import HEADER
from docsum.gateway.transport import Answer
from tests.gateway.documents import ARTICLE, make_pdf, png_bytes
from tests.gateway.inprocess import (
    DOCUMENTS,
    Call,
    GatewayFactory,
    gateways,
    json_answer,
    ocr_reads,
    overloaded,
    refused,
    summarizer_summarizes,
)


@pytest.fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """``make_gateway(ocr=responder, summarizer=responder, **settings)``."""
    async with gateways(tmp_path, breaker_failures=3) as make:
        yield make


def _png() -> bytes:
    return png_bytes(Image.new("L", (40, 20), 255))


def _retries(upstream: str) -> float:
    labels = {"upstream": upstream, "version": "stable"}
    return REGISTRY.get_sample_value("docsum_upstream_retries_total", labels) or 0.0


# --- /api/v1/summarize ----------------------------------------------------------------------


async def test_summarize_forwards_the_body_and_answers_what_the_summarizer_answered(
    make_gateway: GatewayFactory,
) -> None:
    gw = make_gateway()
    body = {"text": "One thing happened. Then another.", "max_sentences": 1}
    r = await gw.post("/api/v1/summarize", json=body, headers={"X-Request-ID": "rid-42"})
    assert r.status_code == 200, r.text
    assert r.json()["summary"] == "One thing happened."
    assert r.headers["x-docsum-backend"] == "stable" and r.headers["x-request-id"] == "rid-42"
    [call] = gw.summarizer.calls
    assert (call.method, call.path, json.loads(call.body)) == ("POST", "/v1/summarize", body)
    assert call.headers["x-request-id"] == "rid-42"
    assert call.headers["content-type"] == "application/json"


async def test_summarize_pin_chooses_the_version_and_an_unknown_one_is_400(
    make_gateway: GatewayFactory,
) -> None:
    gw = make_gateway(pin_any_version_keys=["tests"])
    pin = {"X-Docsum-Backend": "summarizer=canary"}
    r = await gw.post("/api/v1/summarize", json={"text": "A."}, headers=pin)
    assert r.status_code == 200 and r.headers["x-docsum-backend"] == "canary"
    assert [c.version for c in gw.summarizer.calls] == ["canary"]  # weight 0, by a key allowed
    r = await gw.post("/api/v1/summarize", json={"text": "A."}, headers={"X-Docsum-Backend": "x"})
    assert r.status_code == 400 and "known: canary, stable" in r.json()["error"]["message"]
    r = await gw.post("/api/v1/summarize", json={"text": "A."}, headers={"X-Docsum-Backend": "a="})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    assert len(gw.summarizer.calls) == 1


async def test_a_pin_of_a_version_without_traffic_is_403_for_other_keys(
    make_gateway: GatewayFactory,
) -> None:
    gw = make_gateway()
    for pin in ("canary", "summarizer=canary", "ocr=stable,summarizer=canary"):
        r = await gw.post("/api/v1/summarize", json={"text": "A."}, headers={HEADER: pin})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
        assert r.json()["error"]["upstream"] == "summarizer"
    assert gw.summarizer.calls == []
    r = await gw.post("/api/v1/summarize", json={"text": "A."}, headers={HEADER: "stable"})
    assert r.status_code == 200


async def test_summarize_refuses_what_is_not_json_or_has_no_key(
    make_gateway: GatewayFactory,
) -> None:
    gw = make_gateway()
    r = await gw.post("/api/v1/summarize", content=b"text", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = await gw.client.post("/api/v1/summarize", json={"text": "A."})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = await gw.post("/api/v1/nothing-here", json={})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert gw.summarizer.calls == []


async def test_upstream_client_errors_pass_through_as_they_are(
    make_gateway: GatewayFactory,
) -> None:
    answer = {"error": {"code": "invalid_input", "message": "text is empty", "request_id": "r"}}
    gw = make_gateway(summarizer=lambda call: json_answer(422, answer))
    r = await gw.post("/api/v1/summarize", json={"text": " "})
    assert r.status_code == 422 and r.json() == answer
    assert len(gw.summarizer.calls) == 1  # a client error is not retried


async def test_upstream_503_is_retried_then_answered_503_with_its_retry_after(
    make_gateway: GatewayFactory,
) -> None:
    gw = make_gateway(summarizer=overloaded)
    before = _retries("summarizer")
    r = await gw.post("/api/v1/summarize", json={"text": "A."})
    assert r.status_code == 503 and r.headers["retry-after"] == "3"
    error = r.json()["error"]
    assert error["code"] == "upstream_unavailable" and error["upstream"] == "summarizer"
    assert error["message"] == "summarizer: queue full"
    assert len(gw.summarizer.calls) == 3  # the first try and two retries
    assert _retries("summarizer") - before == 2


async def test_a_503_then_an_answer_is_one_success(make_gateway: GatewayFactory) -> None:
    answers = iter([overloaded, summarizer_summarizes])
    gw = make_gateway(summarizer=lambda call: next(answers)(call))
    r = await gw.post("/api/v1/summarize", json={"text": "Fine. Really."})
    assert r.status_code == 200 and r.json()["summary"] == "Fine."
    assert len(gw.summarizer.calls) == 2


async def test_an_unreachable_upstream_is_503_then_its_circuit_opens(
    make_gateway: GatewayFactory,
) -> None:
    gw = make_gateway(summarizer=refused)
    r = await gw.post("/api/v1/summarize", json={"text": "A."})
    assert r.status_code == 503 and "cannot reach a backend" in r.json()["error"]["message"]
    assert len(gw.summarizer.calls) == 3  # three failures: breaker_failures, the circuit opens
    r = await gw.post("/api/v1/summarize", json={"text": "A."})
    assert r.status_code == 503 and r.headers["retry-after"] == "10"
    assert "circuit open" in r.json()["error"]["message"]
    assert len(gw.summarizer.calls) == 3  # no call went out


# --- /api/v1/ocr ----------------------------------------------------------------------------


async def test_ocr_sends_the_image_as_a_form_and_passes_the_answer_on(
    make_gateway: GatewayFactory,
) -> None:
    gw = make_gateway()
    files = {"file": ("scan.png", _png(), "image/png")}
    r = await gw.post("/api/v1/ocr", files=files, data={"mode": "line"})
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "The text of scan.png."
    [call] = gw.ocr.calls
    assert call.path == "/v1/ocr" and call.headers["content-type"].startswith("multipart/")
    assert b'name="mode"\r\n\r\nline' in call.body and b"image/png" in call.body


async def test_openapi_documents_the_body_of_every_success(make_gateway: GatewayFactory) -> None:
    gw = make_gateway()
    spec = (await gw.client.get("/openapi.json")).json()
    expected = {
        "/api/v1/summarize": "SummarizeResponse",
        "/api/v1/ocr": "OCRResponse",
        "/api/v1/documents:summarize": "DocumentSummary",
    }
    for path, model in expected.items():
        ok = spec["paths"][path]["post"]["responses"]["200"]
        assert ok["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{model}"
        }
    ocr_page = spec["components"]["schemas"]["OCRPageOut"]["properties"]
    assert {"number", "width", "height", "lines"} <= set(ocr_page)


async def test_ocr_refuses_pdfs_unknown_files_and_bodies_that_are_not_forms(
    make_gateway: GatewayFactory,
) -> None:
    gw = make_gateway()
    pdf = make_pdf([["A page."]])
    r = await gw.post("/api/v1/ocr", files={"file": ("a.pdf", pdf, "application/pdf")})
    assert r.status_code == 415 and "documents:summarize" in r.json()["error"]["message"]
    r = await gw.post("/api/v1/ocr", files={"file": ("a.gif", b"GIF89a....", "image/gif")})
    assert r.status_code == 415
    r = await gw.post("/api/v1/ocr", json={"file": "no"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]["message"]
    r = await gw.post("/api/v1/ocr", data={"mode": "page"}, files={"other": ("x", b"x")})
    assert r.status_code == 400 and "'file'" in r.json()["error"]["message"]
    assert gw.ocr.calls == []


# --- /api/v1/documents:summarize ------------------------------------------------------------


async def test_an_image_is_read_then_summarized(make_gateway: GatewayFactory) -> None:
    gw = make_gateway()
    files = {"file": ("page.png", _png(), "image/png")}
    r = await gw.post(DOCUMENTS, files=files, data={"max_sentences": "1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == "The text of page.png."
    assert body["summary"] == "The text of page."
    assert body["pages"] == [{"number": 1, "source": "ocr", "text": "The text of page.png."}]
    assert body["backends"] == {"ocr": "stable", "summarizer": "stable"}
    assert body["errors"] == []
    assert {"read", "pages", "ocr", "summarize", "total"} <= set(body["timings_ms"])
    [summary_call] = gw.summarizer.calls
    assert json.loads(summary_call.body) == {"text": body["text"], "max_sentences": 1}


async def test_a_pdf_uses_text_layers_and_sends_only_scanned_pages_to_ocr(
    make_gateway: GatewayFactory,
) -> None:
    gw = make_gateway(pdf_scan_dpi_range=(10.0, 450.0))
    scan = Image.new("L", (170, 220), 255)  # 20 dpi on a letter page: sent as its JPEG
    pdf = make_pdf([ARTICLE[:3], scan])
    r = await gw.post(DOCUMENTS, files={"file": ("doc.pdf", pdf, "application/pdf")})
    assert r.status_code == 200, r.text
    pages = r.json()["pages"]
    assert [(p["number"], p["source"]) for p in pages] == [(1, "text-layer"), (2, "ocr")]
    assert "city council approved" in pages[0]["text"]
    assert pages[1]["text"] == "The text of page-2.jpg."
    [call] = gw.ocr.calls
    assert b"image/jpeg" in call.body and b'name="mode"\r\n\r\npage' in call.body


@pytest.mark.parametrize(
    ("pdf", "complaint"),
    [
        (make_pdf([["One."], ["Two."]]), "the PDF has 2 pages; the limit is 1"),
        (make_pdf([["Secret."]], encrypt=True), "needs a password"),
        (b"%PDF-1.7\nnot really a PDF", "not a readable PDF"),
    ],
)
async def test_pdfs_that_cannot_be_read_are_422_before_any_upstream_call(
    make_gateway: GatewayFactory, pdf: bytes, complaint: str
) -> None:
    gw = make_gateway(pdf_max_pages=1)
    r = await gw.post(DOCUMENTS, files={"file": ("doc.pdf", pdf, "application/pdf")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    assert complaint in r.json()["error"]["message"]
    assert gw.ocr.calls == [] and gw.summarizer.calls == []


@pytest.mark.parametrize(
    ("data", "headers", "status", "complaint"),
    [
        ({"max_sentences": "0"}, {}, 422, "max_sentences: Input should be greater than"),
        ({"max_sentences": "2.5"}, {}, 422, "max_sentences: Input should be a valid integer"),
        ({"ratio": "many"}, {}, 422, "ratio: Input should be a valid number"),
        ({}, {"X-Docsum-Backend": "purple"}, 400, "no upstream has a version 'purple'"),
    ],
)
async def test_bad_parameters_are_refused_before_any_upstream_call(
    make_gateway: GatewayFactory,
    data: dict[str, str],
    headers: dict[str, str],
    status: int,
    complaint: str,
) -> None:
    gw = make_gateway()
    files = {"file": ("page.png", _png(), "image/png")}
    r = await gw.post(DOCUMENTS, files=files, data=data, headers=headers)
    assert r.status_code == status and complaint in r.json()["error"]["message"]
    assert gw.ocr.calls == []


async def test_ocr_failures_fail_the_document(make_gateway: GatewayFactory) -> None:
    gw = make_gateway(ocr=overloaded, pdf_scan_dpi_range=(10.0, 450.0))
    pdf = make_pdf([Image.new("L", (170, 220), 255)] * 2)
    r = await gw.post(DOCUMENTS, files={"file": ("doc.pdf", pdf, "application/pdf")})
    assert r.status_code == 503 and r.json()["error"]["upstream"] == "ocr"
    assert gw.summarizer.calls == []
    # An OCR answer that refuses the page is passed on as it is.
    answer = {"error": {"code": "invalid_input", "message": "image too small", "request_id": ""}}
    gw = make_gateway(ocr=lambda call: json_answer(422, answer))
    r = await gw.post(DOCUMENTS, files={"file": ("page.png", _png(), "image/png")})
    assert r.status_code == 422 and r.json() == answer


async def test_a_failed_summary_keeps_the_text_and_says_why(make_gateway: GatewayFactory) -> None:
    gw = make_gateway(summarizer=refused)
    r = await gw.post(DOCUMENTS, files={"file": ("page.png", _png(), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == "The text of page.png." and body["summary"] is None
    [error] = body["errors"]
    assert error["stage"] == "summarize" and error["upstream"] == "summarizer"
    assert (error["status"], error["code"]) == (503, "upstream_unavailable")
    assert body["backends"] == {"ocr": "stable"}


# --- readiness probes -----------------------------------------------------------------------


async def test_a_busy_backend_stays_in_rotation_until_its_probes_are_late_three_times_running(
    make_gateway: GatewayFactory,
) -> None:
    """A late /readyz (a busy backend) is not a no: the backend leaves the rotation only after
    ``probe_late_limit`` late probes in a row; a refused connection takes it out at once."""
    late = {"on": False}

    def ocr(call: Call) -> Answer | Exception:
        if call.path == "/readyz":
            return TimeoutError() if late["on"] else json_answer(200, {"status": "ready"})
        return ocr_reads(call)

    gw = make_gateway(ocr=ocr)
    upstream = gw.app.state.gateway.upstreams["ocr"]
    (backend,) = upstream.routes.backends
    await upstream.probe(0.5, 3)
    assert backend.ready is True
    late["on"] = True
    for _ in range(2):
        await upstream.probe(0.5, 3)
        assert backend.ready is True and upstream.ready_reason() is None
    r = await gw.post(DOCUMENTS, files={"file": ("a.png", _png(), "image/png")})
    assert r.status_code == 200, r.text  # served while its probes are late
    await upstream.probe(0.5, 3)
    assert backend.ready is False
    assert "3 probes in a row" in (upstream.ready_reason() or "")
    late["on"] = False
    await upstream.probe(0.5, 3)
    assert backend.ready is True and backend.late_probes == 0
    gw.ocr.respond = refused
    await upstream.probe(0.5, 3)
    assert backend.ready is False and "ConnectError" in backend.probe_error
