"""The load tests' own pieces: payloads and SLO verdicts (Locust runs for real are in
test_locust.py)."""

from __future__ import annotations

import dataclasses
import io
import random
from typing import Any

import pypdfium2 as pdfium
import pytest
from PIL import Image

from loadtests import payloads, report
from tests.support.documents import png_bytes, scanned_pdf, tiff_bytes

# --------------------------------------------------------------------------------------------
# Payloads


def test_pages_are_a4_at_300_dpi_with_dark_text() -> None:
    page = payloads.page_image(random.Random(1))
    assert page.size == (2480, 3508)
    dark = sum(page.histogram()[:128]) / (page.width * page.height)
    assert 0.02 < dark < 0.3  # ink, not a blank page, not a black one


def test_text_pdf_has_a_text_layer_and_scans_do_not() -> None:
    rng = random.Random(2)
    pdf = pdfium.PdfDocument(payloads.text_pdf(rng, 3))
    assert len(pdf) == 3
    text = pdf[1].get_textpage().get_text_range()
    assert len(text.split()) > 300
    scan = pdfium.PdfDocument(
        scanned_pdf([payloads.page_image(rng, 100), payloads.page_image(rng, 100)], 100)
    )
    assert len(scan) == 2
    assert scan[0].get_textpage().get_text_range().strip() == ""


def test_tiff_documents_have_one_frame_per_page() -> None:
    rng = random.Random(3)
    pages = [payloads.page_image(rng, 100) for _ in range(3)]
    png_bytes(pages[0])  # a page saved before must not spoil the TIFF
    with Image.open(io.BytesIO(tiff_bytes(pages))) as tiff:
        assert tiff.n_frames == 3


def test_articles_have_news_lengths_and_sentences() -> None:
    rng = random.Random(4)
    lengths = [payloads.article_words(rng) for _ in range(500)]
    assert min(lengths) >= 150 and max(lengths) <= 2000
    assert 500 < sorted(lengths)[250] < 700  # median ~600 words
    text = payloads.article(600, rng)
    assert 600 <= len(text.split()) < 800
    assert text.count(".") > 20 and "\n\n" in text


def test_multipart_bodies_carry_the_file_and_the_fields() -> None:
    up = payloads.multipart("a.png", b"\x89PNG-bytes", "image/png", {"mode": "page"}, "png")
    boundary = up.content_type.split("boundary=")[1]
    assert up.body.startswith(f"--{boundary}\r\n".encode())
    assert up.body.endswith(f"--{boundary}--\r\n".encode())
    assert b'name="mode"\r\n\r\npage\r\n' in up.body
    assert b'filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG-bytes\r\n' in up.body


# --------------------------------------------------------------------------------------------
# Verdicts


def test_percentile_is_locust_s() -> None:
    hist = {100: 98, 5000: 2}
    assert report.percentile(hist, 100, 0.50) == 100
    assert report.percentile(hist, 100, 0.95) == 100
    assert report.percentile(hist, 100, 0.99) == 5000


def _entry(name: str, hist: dict[int, int], failures: int = 0) -> dict[str, Any]:
    n = sum(hist.values())
    return {
        "method": "POST",
        "name": name,
        "requests": n,
        "failures": failures,
        "response_times_ms": {str(k): v for k, v in hist.items()},
        "start_time": 1000.0,
        "last_request_time": 1060.0,
    }


def test_judge_passes_fails_and_abstains() -> None:
    slos = report.load_slos()
    # slo.toml judges p99 and errors; a route may also limit its p95.
    slos["/api/v1/ocr"] = dataclasses.replace(slos["/api/v1/ocr"], p95_ms=3500)
    summary = {
        "entries": [
            _entry("/api/v1/summarize", {300: 95, 900: 5}),  # within 2.5 s
            _entry("/api/v1/ocr", {1500: 90, 6000: 10}),  # p99 6 s > 5 s
            _entry("/api/v1/documents:summarize", {3000: 5}),  # too few for a verdict
            _entry("/v1/summarize", {200: 100}),  # fast, but arrivals were dropped
            _entry("/elsewhere", {10: 50}),  # no SLO
        ],
        "errors": [
            {
                "method": "POST",
                "name": "/v1/summarize",
                "error": "dropped: 64 requests already in flight",
                "occurrences": 5,
            },
        ],
    }
    summary["entries"][3]["failures"] = 5
    results = {r.route: r for r in report.judge(summary, slos)}
    assert results["/api/v1/summarize"].verdict == "pass"
    assert results["/api/v1/ocr"].verdict == "FAIL"
    assert results["/api/v1/ocr"].broken == ["p95 6000 ms > 3500 ms", "p99 6000 ms > 5000 ms"]
    assert results["/api/v1/documents:summarize"].verdict == "too few requests"
    dropped = results["/v1/summarize"]
    assert (dropped.attempts, dropped.verdict) == (105, "FAIL")
    assert dropped.broken == ["errors 4.76% > 1.00%"]
    assert results["/elsewhere"].verdict == "no SLO"
    assert results["/api/v1/summarize"].rate_rps == pytest.approx(100 / 60)
    assert not report.passed(list(results.values()))
