"""Issue 21's cost rows (2–8) as scenarios against live services, each returning its figures:
the answers, how long they took, and each service's resident memory before, at its peak
during, and after the row — from the services' own ``/metrics``
(``process_resident_memory_bytes``; the gateway's PDF workers from
``docsum_gateway_pdf_workers_resident_memory_bytes``).

``tests/reliability/test_cost.py`` asserts on them; ``bench/hostile.py`` writes them to
``bench/results/hostile.json``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.documents import ARTICLE, LINES, line_image, make_pdf, png_bytes
from tests.support.services import AUTH, GATEWAY_KEY, LiveService

MB = 2**20
#: The metric lines read for each service's memory.
_RSS = "process_resident_memory_bytes"
_WORKERS = "docsum_gateway_pdf_workers_resident_memory_bytes"


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` carrying ``labels`` in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key.split("{")[0] != name or any(f'{k}="{v}"' not in key for k, v in labels.items()):
            continue
        total += float(value)
    return total


def memory(services: dict[str, LiveService]) -> dict[str, float]:
    """Resident memory of each service now, in MB (the gateway's PDF workers apart)."""
    out = {}
    for name, svc in services.items():
        text = httpx.get(f"{svc.url}/metrics", timeout=10).text
        out[name] = metric(text, _RSS) / MB
        if name == "gateway":
            out["gateway PDF workers"] = metric(text, _WORKERS) / MB
    return out


@dataclass
class Sampler:
    """Samples :func:`memory` every ``every_s`` in a thread: before, peak and after a row."""

    services: dict[str, LiveService]
    every_s: float = 0.1
    before: dict[str, float] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for name, mb in memory(self.services).items():
                    self.peak[name] = max(self.peak.get(name, 0.0), mb)
            except httpx.HTTPError:
                pass  # a scrape that did not answer in time: the next one will
            self._stop.wait(self.every_s)

    @contextmanager
    def watching(self) -> Iterator[Sampler]:
        self.before = memory(self.services)
        self.peak = dict(self.before)
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.after = memory(self.services)
            for name, mb in self.after.items():
                self.peak[name] = max(self.peak.get(name, 0.0), mb)

    def figures(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "before_mb": round(self.before[name], 1),
                "peak_mb": round(self.peak[name], 1),
                "after_mb": round(self.after[name], 1),
            }
            for name in self.before
        }


def _timed(send: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    r = send()
    return r, time.perf_counter() - started


def _answer(r: httpx.Response, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"status": r.status_code, "seconds": round(seconds, 3)}
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        err = r.json().get("error", {})
        out["message"] = err.get("message")
        out |= {k: err[k] for k in ("limit", "allowed", "requested") if k in err}
    return out


def _upload(url: str, name: str, data: bytes, media: str, timeout: float = 120) -> httpx.Response:
    return httpx.post(url, files={"file": (name, data, media)}, headers=AUTH, timeout=timeout)


def _in_thread(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Start ``fn`` in a thread; the returned function waits for it and gives its result."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()

    def result() -> Any:
        thread.join()
        return out[0]

    return result


def small_ocr(url: str) -> tuple[httpx.Response, float]:
    """One text line read in line mode: a small request from another caller."""
    line = png_bytes(line_image(LINES[0]))
    return _timed(
        lambda: httpx.post(
            url,
            files={"file": ("line.png", line, "image/png")},
            data={"mode": "line"},
            headers=AUTH,
            timeout=120,
        )
    )


def ocr_idle_after(ocr: LiveService, limit_s: float = 60.0) -> float:
    """Seconds until the OCR service stops working: no line crop waiting, and under 0.1 s of
    CPU used in the last half second (its own ``process_cpu_seconds_total``)."""
    started = time.perf_counter()
    samples: list[tuple[float, float]] = []
    last_busy = started
    while time.perf_counter() - started < limit_s:
        text = httpx.get(f"{ocr.url}/metrics", timeout=10).text
        now = time.perf_counter()
        samples.append((now, metric(text, "process_cpu_seconds_total")))
        past = [cpu for t, cpu in samples if now - t >= 0.5]
        waiting = metric(text, "docsum_inference_queue_depth", model="crnn")
        if waiting or not past or samples[-1][1] - past[-1] >= 0.1:
            last_busy = now
        elif now - last_busy >= 1.0:
            return round(last_busy - started, 2)
        time.sleep(0.1)
    return limit_s


# --------------------------------------------------------------------------------- the rows


def row2_tiff_bomb(ocr: LiveService, gateway: LiveService, tiff: bytes) -> dict[str, Any]:
    """A few-KB TIFF of 50 blank 60-megapixel frames: refused from its headers."""
    direct = _answer(*_timed(lambda: _upload(f"{ocr.url}/v1/ocr", "f.tiff", tiff, "image/tiff")))
    url = f"{gateway.url}/api/v1/ocr"
    both = [_in_thread(lambda: _timed(lambda: _upload(url, "f.tiff", tiff, "image/tiff")))]
    both.append(_in_thread(lambda: _timed(lambda: _upload(url, "f.tiff", tiff, "image/tiff"))))
    return {"bytes": len(tiff), "ocr": direct, "gateway_two_at_once": [_answer(*b()) for b in both]}


def _batches(ocr: LiveService) -> float:
    text = httpx.get(f"{ocr.url}/metrics", timeout=10).text
    return metric(text, "docsum_inference_batch_size_count", model="crnn")


def ocr_busy(ocr: LiveService, since: float, limit_s: float = 60.0) -> bool:
    """Wait until the OCR service has started a batch of line crops after ``since`` batches
    (True), or ``limit_s`` passes."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        if _batches(ocr) > since:
            return True
        time.sleep(0.05)
    return False


def multipart(name: str, data: bytes, media: str) -> tuple[bytes, str]:
    """A form with one file field: its body and content type."""
    boundary = "docsumcostrows"
    body = (
        f'--{boundary}\r\ncontent-disposition: form-data; name="file"; filename="{name}"\r\n'
        f"content-type: {media}\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def row3_hang_up(gateway: LiveService, ocr: LiveService, pdf: bytes) -> dict[str, Any]:
    """A PDF of rectangle pages whose client hangs up once the OCR is at work on it: the OCR
    stops, and another caller's small OCR is served meanwhile and after."""
    body, content_type = multipart("rects.pdf", pdf, "application/pdf")
    host, port = gateway.url.removeprefix("http://").split(":")
    batches = _batches(ocr)
    client = socket.create_connection((host, int(port)))
    client.sendall(
        f"POST /api/v1/documents:summarize HTTP/1.1\r\nhost: {host}\r\n"
        f"x-api-key: {GATEWAY_KEY}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    started = time.perf_counter()
    busy = ocr_busy(ocr, batches)
    during, during_s = small_ocr(f"{gateway.url}/api/v1/ocr")
    # Served beside the document, not after it: the document is still in the OCR service (one
    # request in flight is this scrape).
    ocr_metrics = httpx.get(f"{ocr.url}/metrics", timeout=10).text
    overtook = metric(ocr_metrics, "docsum_http_requests_in_flight") >= 2
    client.close()  # the hang-up
    hung_up = time.perf_counter()
    stopped_s = ocr_idle_after(ocr)
    after, after_s = small_ocr(f"{gateway.url}/api/v1/ocr")
    return {
        "bytes": len(pdf),
        "ocr_at_work": busy,
        "hung_up_after_s": round(hung_up - started, 2),
        "ocr_stopped_after_hang_up_s": stopped_s,
        "small_ocr_during": {"status": during.status_code, "seconds": round(during_s, 3)},
        "small_ocr_served_before_the_document": overtook,
        "small_ocr_after": {"status": after.status_code, "seconds": round(after_s, 3)},
    }


def row3_deadline(gateway: LiveService, ocr: LiveService, pdf: bytes) -> dict[str, Any]:
    """The same PDF through a gateway whose deadline is short: 504 at the deadline, and the
    OCR stops with it."""
    answer = _answer(
        *_timed(
            lambda: _upload(
                f"{gateway.url}/api/v1/documents:summarize", "rects.pdf", pdf, "application/pdf"
            )
        )
    )
    return {"answer": answer, "ocr_stopped_after_answer_s": ocr_idle_after(ocr)}


def row4_text_layer(gateway: LiveService, pdf: bytes) -> dict[str, Any]:
    """A PDF whose one page holds ten million characters, and a normal PDF sent meanwhile."""
    url = f"{gateway.url}/api/v1/documents:summarize"
    normal = make_pdf([ARTICLE])
    alone = _answer(*_timed(lambda: _upload(url, "ok.pdf", normal, "application/pdf")))
    hostile = _in_thread(lambda: _timed(lambda: _upload(url, "t.pdf", pdf, "application/pdf")))
    time.sleep(0.3)
    meanwhile = _answer(*_timed(lambda: _upload(url, "ok.pdf", normal, "application/pdf")))
    return {
        "bytes": len(pdf),
        "hostile": _answer(*hostile()),
        "normal_pdf_alone": alone,
        "normal_pdf_meanwhile": meanwhile,
    }


def row5_many_keys(gateway: LiveService, body: bytes) -> dict[str, Any]:
    """A JSON body of ~900k keys: with its Content-Length, and streamed (chunked)."""
    url = f"{gateway.url}/api/v1/summarize"
    headers = {**AUTH, "content-type": "application/json"}

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    sized = _in_thread(lambda: _timed(lambda: httpx.post(url, content=body, headers=headers)))
    streamed = _in_thread(
        lambda: _timed(lambda: httpx.post(url, content=chunks(), headers=headers))
    )
    normal = _timed(
        lambda: httpx.post(url, json={"text": " ".join(ARTICLE)}, headers=AUTH, timeout=60)
    )
    ready = httpx.get(f"{gateway.url}/readyz", timeout=10)
    return {
        "bytes": len(body),
        "with_content_length": _answer(*sized()),
        "chunked": _answer(*streamed()),
        "normal_summary_meanwhile": _answer(*normal),
        "gateway_readyz": ready.status_code,
    }


async def polite_upload(
    url: str, path: str, headers: bytes, zeros: int, prefix: bytes = b"", suffix: bytes = b""
) -> int:
    """POST ``prefix`` + ``zeros`` zero bytes + ``suffix`` with its Content-Length, as curl
    does: reading the answer while sending, and stopping as soon as it comes. The status."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    size = len(prefix) + zeros + len(suffix)
    writer.write(
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\nx-api-key: {GATEWAY_KEY}\r\n".encode()
        + headers
        + f"content-length: {size}\r\n\r\n".encode()
        + prefix
    )
    answer = asyncio.ensure_future(reader.readline())
    chunk = b"\0" * MB
    sent = 0
    try:
        while sent < zeros and not answer.done():
            n = min(len(chunk), zeros - sent)
            writer.write(chunk[:n])
            await writer.drain()
            sent += n
        if not answer.done():
            writer.write(suffix)
        status = int((await asyncio.wait_for(answer, 120)).split()[1])
    finally:
        writer.close()
    return status


def row6_big_bodies(gateway: LiveService, n: int = 20, size: int = 48 * MB) -> dict[str, Any]:
    """``n`` concurrent uploads of ``size`` bytes each, to the summarize and the OCR routes."""
    boundary = "docsumcostrow6"
    form = (
        f"content-type: multipart/form-data; boundary={boundary}\r\n".encode(),
        (
            f'--{boundary}\r\ncontent-disposition: form-data; name="file"; '
            'filename="big.png"\r\ncontent-type: image/png\r\n\r\n'
        ).encode(),
        f"\r\n--{boundary}--\r\n".encode(),
    )
    routes = {
        "/api/v1/summarize": (b"content-type: application/json\r\n", b"", b""),
        "/api/v1/ocr": form,
    }

    async def burst(path: str) -> list[int]:
        headers, prefix, suffix = routes[path]
        return list(
            await asyncio.gather(
                *(polite_upload(gateway.url, path, headers, size, prefix, suffix) for _ in range(n))
            )
        )

    out: dict[str, Any] = {"bodies": n, "bytes_each": size}
    for path in routes:
        started = time.perf_counter()
        statuses: dict[str, int] = {}
        for status in asyncio.run(burst(path)):
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        out[path] = {"statuses": statuses, "seconds": round(time.perf_counter() - started, 2)}
    return out


def row7_memory_back(
    services: dict[str, LiveService], warm: dict[str, float], limit_s: float = 60.0
) -> dict[str, Any]:
    """After the rows: seconds until each service's memory is within 20 % of its warm level."""
    started = time.perf_counter()
    back: dict[str, float | None] = {}
    now = memory(services)
    while time.perf_counter() - started < limit_s:
        now = memory(services)
        for name, mb in now.items():
            if name not in back and mb <= max(warm[name] * 1.2, warm[name] + 5):
                back[name] = round(time.perf_counter() - started, 1)
        if len(back) == len(now):
            break
        time.sleep(1.0)
    return {
        name: {
            "warm_mb": round(warm[name], 1),
            "end_mb": round(now[name], 1),
            "back_within_20pct_after_s": back.get(name),
        }
        for name in now
    }


def row8_lying_page_count(gateway: LiveService, pdf: bytes) -> dict[str, Any]:
    """A PDF whose page tree says 100 pages and holds one."""
    url = f"{gateway.url}/api/v1/documents:summarize"
    return _answer(*_timed(lambda: _upload(url, "lie.pdf", pdf, "application/pdf")))
