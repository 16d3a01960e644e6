"""Bounded resources: a full queue answers 503 + Retry-After at once; a request that takes
too long answers 504; neither leaves the service worse off."""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.support.documents import LINES, line_image, page_image, png_bytes
from tests.support.services import LiveService, counter, start_service
from tests.support.stack import OCR_ENV

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LONG_TEXT = " ".join(
    f"Sentence {i} of the report says something about topic {i % 9} and its costs."
    for i in range(120)
)


async def _burst(n: int, send: object) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=120) as client:
        return await asyncio.gather(*(send(client) for _ in range(n)))  # type: ignore[operator]


def _healthy_after(svc: LiveService) -> None:
    assert svc.proc.poll() is None
    assert httpx.get(f"{svc.url}/readyz", timeout=10).status_code == 200


@pytest.fixture(scope="module")
def tiny_queue_summarizer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    svc = start_service(
        "summarizer",
        tmp_path_factory.mktemp("summarizer-tiny-queue"),
        {
            "DOCSUM_SUMMARIZER_BATCH__MAX_QUEUE_SIZE": "2",
            "DOCSUM_SUMMARIZER_BATCH__MAX_BATCH_SIZE": "1",
            "DOCSUM_SUMMARIZER_BATCH__RETRY_AFTER_S": "3",
            "DOCSUM_SUMMARIZER_TORCH_THREADS": "1",
        },
    )
    yield svc
    svc.stop()


def test_full_summarizer_queue_answers_503_with_retry_after(
    tiny_queue_summarizer: LiveService,
) -> None:
    svc = tiny_queue_summarizer
    url = f"{svc.url}/v1/summarize"
    rejected_before = counter(svc, "docsum_inference_items_total", outcome="rejected")
    started = time.monotonic()
    answers = asyncio.run(_burst(40, lambda c: c.post(url, json={"text": LONG_TEXT})))
    statuses = Counter(r.status_code for r in answers)
    assert set(statuses) == {200, 503}, statuses
    for r in answers:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "3"
            err = r.json()["error"]
            assert err["code"] == "overloaded" and "queue is full" in err["message"]
    assert statuses[200] >= 2  # the two the queue holds, at least
    rejected = counter(svc, "docsum_inference_items_total", outcome="rejected") - rejected_before
    assert rejected == statuses[503]
    assert time.monotonic() - started < 60
    _healthy_after(svc)
    assert httpx.post(url, json={"text": LONG_TEXT}, timeout=60).status_code == 200


def _ocr_with(tmp: pytest.TempPathFactory, name: str, env: dict[str, str]) -> LiveService:
    return start_service(
        "ocr", tmp.mktemp(name), {**OCR_ENV, "DOCSUM_OCR_TORCH_THREADS": "1", **env}
    )


@pytest.fixture(scope="module")
def small_queue_ocr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """OCR whose queue holds 16 line crops, taken 4 at a time."""
    svc = _ocr_with(
        tmp_path_factory,
        "ocr-small-queue",
        {
            "DOCSUM_OCR_BATCH__MAX_QUEUE_SIZE": "16",
            "DOCSUM_OCR_BATCH__MAX_BATCH_SIZE": "4",
            "DOCSUM_OCR_BATCH__RETRY_AFTER_S": "2",
        },
    )
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def hasty_ocr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """OCR that gives a request 0.5 s."""
    svc = _ocr_with(tmp_path_factory, "ocr-hasty", {"DOCSUM_OCR_REQUEST_TIMEOUT_S": "0.5"})
    yield svc
    svc.stop()


def test_ocr_queue_of_line_crops_overflows_to_503(small_queue_ocr: LiveService) -> None:
    page, _ = page_image(LINES * 2)  # 10 lines: a page's crops are queued all or none
    data = png_bytes(page)
    url = f"{small_queue_ocr.url}/v1/ocr"
    answers = asyncio.run(
        _burst(6, lambda c: c.post(url, files={"file": ("p.png", data, "image/png")}))
    )
    statuses = Counter(r.status_code for r in answers)
    # The first page finds the queue empty; six pages of 10 crops do not fit in 16 slots.
    assert statuses[200] >= 1 and statuses[503] >= 1 and set(statuses) == {200, 503}, statuses
    assert all(
        r.headers.get("retry-after") == "2" and r.json()["error"]["code"] == "overloaded"
        for r in answers
        if r.status_code == 503
    )
    _healthy_after(small_queue_ocr)
    one_page = png_bytes(page_image()[0])
    r = httpx.post(url, files={"file": ("p.png", one_page, "image/png")}, timeout=30)
    assert r.status_code == 200


def test_ocr_request_over_its_time_limit_answers_504(hasty_ocr: LiveService) -> None:
    page, _ = page_image()
    out = io.BytesIO()  # 12 pages of 5 lines: over a second of work on CPU
    page.save(
        out, format="TIFF", save_all=True, append_images=[page] * 11, compression="tiff_deflate"
    )
    url = f"{hasty_ocr.url}/v1/ocr"
    t0 = time.monotonic()
    r = httpx.post(url, files={"file": ("p.tiff", out.getvalue(), "image/tiff")}, timeout=60)
    took = time.monotonic() - t0
    assert r.status_code == 504, r.text[:300]
    assert r.json()["error"]["code"] == "timeout" and "0.5 s" in r.json()["error"]["message"]
    assert took < 0.5 + 1.0
    # The abandoned lines do not clog the service: a one-line request right after is read.
    r = httpx.post(
        url,
        files={"file": ("l.png", png_bytes(line_image(LINES[0])), "image/png")},
        data={"mode": "line"},
        timeout=30,
    )
    assert r.status_code == 200, r.text[:300]
    _healthy_after(hasty_ocr)
