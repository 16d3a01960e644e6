"""The OCR service over real HTTP: a real server on 127.0.0.1 with the trained model."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein

from tests.support.documents import LINES, encode, line_image, page_image
from tests.support.services import LiveService

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _ocr(svc: LiveService, data: bytes, mode: str | None = None, **kw: object) -> httpx.Response:
    form = {"mode": mode} if mode else {}
    files = {"file": ("upload.bin", data, "application/octet-stream")}
    return httpx.post(f"{svc.url}/v1/ocr", files=files, data=form, timeout=60, **kw)  # type: ignore[arg-type]


def _metric(svc: LiveService, name: str) -> float:
    text = httpx.get(f"{svc.url}/metrics").text
    return sum(float(m) for m in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def test_line_mode_reads_one_line(ocr_service: LiveService) -> None:
    img = line_image(LINES[0])
    r = _ocr(ocr_service, encode(img, "PNG"), "line")
    assert r.status_code == 200, r.text
    body = r.json()
    [page] = body["pages"]
    [line] = page["lines"]
    assert Levenshtein.distance(line["text"], LINES[0]) <= 4, line
    assert line["box"] == [0, 0, img.width, img.height]
    assert 0 <= line["confidence"] <= 1
    assert body["text"] == line["text"]
    assert body["model"]["name"] == "crnn" and body["model"]["version"].startswith("crnn-s")


def test_page_mode_finds_lines_in_reading_order(ocr_service: LiveService) -> None:
    img, boxes = page_image()
    r = _ocr(ocr_service, encode(img.convert("RGB"), "JPEG", quality=90))
    assert r.status_code == 200, r.text
    [page] = r.json()["pages"]
    assert (page["width"], page["height"]) == img.size
    assert len(page["lines"]) == len(LINES)
    for line, text, (x0, y0, x1, y1) in zip(page["lines"], LINES, boxes, strict=True):
        assert Levenshtein.distance(line["text"], text) <= 5, (line["text"], text)
        bx0, by0, bx1, by1 = line["box"]
        assert bx0 <= x0 + 4 and by0 <= y0 + 4 and bx1 >= x1 - 4 and by1 >= y1 - 4  # covers the ink
    assert r.json()["text"].count("\n") == len(LINES) - 1


def test_multi_page_tiff_is_read_page_by_page(ocr_service: LiveService) -> None:
    pages = [line_image(LINES[1]), line_image(LINES[2])]
    r = _ocr(ocr_service, encode(pages, "TIFF", compression="tiff_lzw"), "line")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["number"] for p in body["pages"]] == [1, 2]
    assert "\n\n" in body["text"]


@pytest.mark.parametrize(
    ("data", "mode", "status", "needle"),
    [
        (b"GIF89a" + b"\0" * 40, None, 415, "GIF"),
        (b"%PDF-1.4\n...", None, 415, "PDF"),
        (b"", None, 422, "empty"),
        (encode(line_image("cut short"), "PNG")[:60], None, 422, "corrupt"),
        (encode(Image.new("1", (15_000, 15_000), 1), "PNG"), None, 413, "pixels"),
        (encode(line_image("x"), "PNG"), "sideways", 422, "mode"),
    ],
)
def test_bad_uploads_get_a_clear_error(
    ocr_service: LiveService, data: bytes, mode: str | None, status: int, needle: str
) -> None:
    r = _ocr(ocr_service, data, mode, headers={"X-Request-ID": "bad-upload-1"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert needle.lower() in error["message"].lower()
    assert error["request_id"] == "bad-upload-1"
    assert httpx.get(f"{ocr_service.url}/readyz").status_code == 200  # still healthy


def test_missing_file_and_oversized_body(ocr_service: LiveService) -> None:
    r = httpx.post(f"{ocr_service.url}/v1/ocr", data={"mode": "line"}, timeout=30)
    assert r.status_code == 422 and "file" in r.json()["error"]["message"]
    r = _ocr(ocr_service, b"\x89PNG\r\n\x1a\n" + b"\0" * 2_100_000)
    assert r.status_code == 413


def test_concurrent_requests_share_batches(ocr_service: LiveService) -> None:
    before_items = _metric(ocr_service, "docsum_inference_batch_size_sum")
    before_batches = _metric(ocr_service, "docsum_inference_batch_size_count")
    images = [encode(line_image(LINES[i % len(LINES)]), "PNG") for i in range(24)]

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=ocr_service.url, timeout=60) as client:
            return await asyncio.gather(
                *(
                    client.post("/v1/ocr", files={"file": ("l.png", d)}, data={"mode": "line"})
                    for d in images
                )
            )

    responses = asyncio.run(run())
    assert all(r.status_code == 200 for r in responses)
    for r, i in zip(responses, range(24), strict=True):  # each answer is its own line's
        assert Levenshtein.distance(r.json()["text"], LINES[i % len(LINES)]) <= 4
    items = _metric(ocr_service, "docsum_inference_batch_size_sum") - before_items
    batches = _metric(ocr_service, "docsum_inference_batch_size_count") - before_batches
    assert items == 24 and batches < 24, (items, batches)
    assert _metric(ocr_service, "docsum_ocr_lines_total") >= 24
