"""The OCR service over real HTTP with the trained model, while a large request is read:
another caller's small request is answered within a few forward passes, and a large request
whose client hangs up stops costing (its page analysis stops, no line of it is read).

Bounds are counted in the service's own recognizer calls (one call is one forward pass,
``docsum_inference_batch_size``) and page analyses (``docsum_inference_stage_duration_seconds``
with stage "detect"), not in seconds, so they hold on a slow or busy machine.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from tests.ocr.busy import rectangles_tiff
from tests.reliability.cost_rows import metric, multipart, ocr_idle_after, small_ocr
from tests.support.pace import wait_for
from tests.support.services import LiveService

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _counts(ocr: LiveService) -> dict[str, float]:
    text = httpx.get(f"{ocr.url}/metrics", timeout=10).text
    stage = "docsum_inference_stage_duration_seconds_count"
    return {
        "calls": metric(text, "docsum_inference_batch_size_count", model="crnn"),
        "lines": metric(text, "docsum_inference_batch_size_sum", model="crnn"),
        "decoded": metric(text, stage, model="crnn", stage="decode"),
        "analysed": metric(text, stage, model="crnn", stage="detect"),
        "stopped": metric(text, "docsum_ocr_page_analyses_stopped_total"),
    }


def _until(ocr: LiveService, what: str, above: float, limit_s: float = 120.0) -> None:
    """Wait until the count ``what`` is past ``above``."""
    wait_for(f"{what} past {above:g}", lambda: _counts(ocr)[what] > above, limit_s)


def test_a_small_request_is_answered_within_a_few_passes_of_a_large_one(
    ocr_service: LiveService,
) -> None:
    """Three pages of ~800 "lines" each (~50 passes) are being read; a one-line request sent
    meanwhile is answered within a few passes, long before the large one is done."""
    tiff = rectangles_tiff(pages=3)
    url = f"{ocr_service.url}/v1/ocr"
    before = _counts(ocr_service)
    answer: list[httpx.Response] = []

    def send_large() -> None:
        files = {"file": ("big.tiff", tiff, "image/tiff")}
        answer.append(httpx.post(url, files=files, timeout=600))

    large = threading.Thread(target=send_large, daemon=True)
    large.start()
    _until(ocr_service, "calls", before["calls"] + 3)  # well into the large one's lines
    meanwhile = _counts(ocr_service)
    small, _ = small_ocr(url)
    after = _counts(ocr_service)
    large_running = large.is_alive()
    large.join(600)
    total = _counts(ocr_service)

    print(
        f"small request: {after['calls'] - meanwhile['calls']:g} passes; the large one "
        f"{total['calls'] - before['calls']:g} passes, {total['lines'] - before['lines']:g} lines"
    )
    assert small.status_code == 200, small.text
    assert answer and answer[0].status_code == 200, answer
    assert large_running, "the large request was done before the small one"
    # The pass running when it came, its own, and those run while its upload was parsed ...
    assert after["calls"] - meanwhile["calls"] <= 5
    # ... of the large one's ~50, most of which were still to come.
    assert total["calls"] - after["calls"] >= 20
    assert total["lines"] - before["lines"] >= 2000


def test_a_large_request_whose_client_hangs_up_stops_its_page_analysis(
    ocr_service: LiveService,
) -> None:
    """Six pages of rectangles; the client hangs up while the first pages are being analysed:
    the analyses stop part-way, no later page is analysed, and no line of it is read."""
    tiff = rectangles_tiff(pages=6)
    body, content_type = multipart("big.tiff", tiff, "image/tiff")
    before = _counts(ocr_service)
    host, port = ocr_service.url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)))
    client.sendall(
        f"POST /v1/ocr HTTP/1.1\r\nhost: {host}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    _until(ocr_service, "decoded", before["decoded"])  # page 1 is decoded: analysis begins
    time.sleep(0.2)  # a page of rectangles takes seconds to analyse
    client.close()
    _until(ocr_service, "stopped", before["stopped"])
    ocr_idle_after(ocr_service)
    after = _counts(ocr_service)

    analysed = after["analysed"] - before["analysed"]
    stopped = after["stopped"] - before["stopped"]
    print(f"hang-up: {stopped:g} analyses stopped, {analysed:g} ended")
    assert 1 <= stopped <= 2  # the pages then being analysed (page_concurrency 2) ...
    assert analysed == stopped  # ... stopped part-way; none ran to its end, none began later
    assert after["calls"] == before["calls"]  # no line of it was read
