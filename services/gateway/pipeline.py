"""``documents:summarize``: a document's pages → text (text layer or OCR) → a summary.

Images (a multi-page TIFF too) go to the OCR service as they are. A PDF's pages are read with
pypdfium2, in a worker process of its own (``pdfpool.py``): pages with a usable text layer use
it; a page that is just a scanner's JPEG at about 300 dpi is sent to OCR as that JPEG; other
pages are rendered grey at ``pdf_render_dpi`` (the recognizer was trained on ~300 dpi scans)
and sent as PNG. Pages go to OCR several at once. The text is then summarized. If only the
summary fails, the text is still returned, with the failure in ``errors``: the OCR work
already done is never thrown away.

What a PDF costs is charged before any page is read: its pages against the caller's rate
limit (``charge``), the pixels of the pages to render against ``pdf_max_total_pixels``. Its
text is capped at ``max_text_bytes``: a text layer of ten million characters is cut (and
``errors`` says so), never passed on whole.

A caller that follows the pages (``progress``: the async jobs' worker) is told as each page
is read; it gets a multi-page TIFF read page by page, like a PDF's scans (its pixels charged
against ``pdf_max_total_pixels`` from the headers first), so the OCR service's per-request
page limit does not bound it.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..common.errors import DocsumError, InvalidInput, PayloadTooLarge, UpstreamError
from ..common.frames import frame_sizes, open_image
from ..common.sniff import MEDIA_TYPES
from .pdf import render_pixels
from .pdfpool import PdfHandle, PdfPool
from .pins import Pins
from .settings import GatewaySettings
from .upstreams import Upstream, UpstreamResponse


class UpstreamAnswered(Exception):
    """An upstream refused the client's input (4xx): its answer is passed on as it is."""

    def __init__(self, response: UpstreamResponse) -> None:
        super().__init__(f"upstream answered {response.status}")
        self.response = response


@dataclass
class SummaryParams:
    max_sentences: int | None = None
    ratio: float | None = None


#: Told (pages read, pages in all) as a document's pages are read.
Progress = Callable[[int, int], None]


@dataclass
class _Run:
    """What one document's run gathers on the way."""

    pages: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    backends: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    progress: Progress | None = None
    done: int = 0
    total: int = 0

    def pages_read(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)

    def time(self, stage: str, seconds: float) -> None:
        self.timings[stage] = round(self.timings.get(stage, 0.0) + seconds * 1000.0, 2)


def page_text(page: dict[str, Any]) -> str:
    """A page of the OCR service's answer as text: its lines, one per line."""
    if isinstance(page.get("text"), str):
        return str(page["text"])
    return "\n".join(str(line.get("text", "")) for line in page.get("lines", []))


class DocumentPipeline:
    def __init__(self, settings: GatewaySettings, ocr: Upstream, summarizer: Upstream) -> None:
        self.settings = settings
        self.ocr = ocr
        self.summarizer = summarizer
        self.pdfs = PdfPool(
            settings.pdf_workers,
            settings.pdf_worker_max_rss_bytes,
            settings.pdf_page_timeout_s,
            settings.pdf_worker_idle_s,
        )

    async def aclose(self) -> None:
        await self.pdfs.aclose()

    async def run(
        self,
        data: bytes,
        kind: str,
        filename: str,
        params: SummaryParams,
        pins: Pins,
        read_s: float = 0.0,
        charge: Callable[[int], None] = lambda pages: None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """The response body of ``documents:summarize`` (raises for the client's errors and
        for OCR failures; a summarizer failure is reported in ``errors``). ``read_s``: the
        seconds it took to receive and parse the upload, counted in the total. ``charge``:
        called with a PDF's page count before any page is read (it raises to refuse).
        ``progress``: told as pages are read."""
        start = time.perf_counter() - read_s
        run = _Run(progress=progress)
        run.time("read", read_s)
        ocr_pin = self._pin(self.ocr, pins)
        if kind == "pdf":
            await self._pdf(data, run, ocr_pin, charge)
        elif kind == "tiff" and progress is not None:
            await self._tiff_pages(data, filename, run, ocr_pin)
        else:
            await self._image(data, kind, filename, run, ocr_pin)
        run.time("pages", time.perf_counter() - start - read_s)
        self._cap_text(run)
        text = "\n\n".join(p["text"] for p in run.pages if p["text"].strip())
        summary = await self._summarize(text, params, run, self._pin(self.summarizer, pins))
        run.time("total", time.perf_counter() - start)
        return {
            "text": text,
            "summary": summary,
            "pages": run.pages,
            "timings_ms": run.timings,
            "backends": run.backends,
            "errors": run.errors,
        }

    @staticmethod
    def _pin(upstream: Upstream, pins: Pins) -> str | None:
        """The version pinned for ``upstream``; a plain pin applies where the version exists."""
        if upstream.name in pins.per:
            return pins.per[upstream.name]
        if pins.default is not None and pins.default in upstream.routes.versions:
            return pins.default
        return None

    async def _ocr(
        self, filename: str, data: bytes, media_type: str, run: _Run, pin: str | None
    ) -> list[dict[str, Any]]:
        r = await self.ocr.call(
            "POST",
            "/v1/ocr",
            files={"file": (filename, data, media_type)},
            data={"mode": "page"},
            pin=pin,
        )
        run.backends["ocr"] = r.version
        if r.status != 200:
            raise UpstreamAnswered(r)
        try:
            pages = r.json()["pages"]
            assert isinstance(pages, list)
        except (ValueError, KeyError, AssertionError):
            raise UpstreamError(
                "ocr: the answer has no 'pages' list", upstream="ocr", version=r.version
            ) from None
        return pages

    async def _image(
        self, data: bytes, kind: str, filename: str, run: _Run, pin: str | None
    ) -> None:
        start = time.perf_counter()
        pages = await self._ocr(filename or f"upload.{kind}", data, MEDIA_TYPES[kind], run, pin)
        run.time("ocr", time.perf_counter() - start)
        run.pages = [
            {"number": int(p.get("number", i + 1)), "source": "ocr", "text": page_text(p)}
            for i, p in enumerate(pages)
        ]
        run.total = len(run.pages)
        run.pages_read(len(run.pages))

    async def _tiff_pages(self, data: bytes, filename: str, run: _Run, pin: str | None) -> None:
        """A TIFF's frames sent to OCR one by one (a few at once), each as a TIFF of its own."""
        s = self.settings
        sizes = await asyncio.to_thread(frame_sizes, data, "tiff", s.pdf_max_pages)
        if len(sizes) > s.pdf_max_pages:
            raise InvalidInput(f"the TIFF has more than {s.pdf_max_pages} pages")
        pixels = sum(w * h for w, h in sizes)
        if pixels > s.pdf_max_total_pixels:
            raise PayloadTooLarge(
                f"the TIFF's {len(sizes)} pages are {pixels:,} pixels; the limit is "
                f"{s.pdf_max_total_pixels:,} (send fewer pages)",
                limit="pdf_max_total_pixels",
                allowed=s.pdf_max_total_pixels,
                requested=pixels,
            )
        run.total = len(sizes)
        texts: dict[int, str] = {}
        slots = asyncio.Semaphore(s.ocr_page_concurrency)
        stem = (filename or "upload.tiff").rsplit(".", 1)[0]

        async def read_page(number: int) -> None:
            async with slots:
                page = await asyncio.to_thread(_tiff_frame, data, number - 1)
                pages = await self._ocr(f"{stem}-{number}.tiff", page, "image/tiff", run, pin)
                texts[number] = "\n".join(page_text(p) for p in pages)
                run.pages_read(1)

        start = time.perf_counter()
        try:
            async with asyncio.TaskGroup() as group:
                for number in range(1, len(sizes) + 1):
                    group.create_task(read_page(number))
        except* (DocsumError, UpstreamAnswered) as failed:
            raise _first(failed) from None
        run.time("ocr", time.perf_counter() - start)
        run.pages = [{"number": n, "source": "ocr", "text": texts[n]} for n in sorted(texts)]

    async def _pdf(
        self, data: bytes, run: _Run, pin: str | None, charge: Callable[[int], None]
    ) -> None:
        s = self.settings
        started = time.perf_counter()
        async with self.pdfs.document(data, s.pdf_max_pages) as doc:
            charge(doc.page_count)
            run.total = doc.page_count
            texts, scanned = await self._text_layers(doc, run)
            run.pages_read(len(texts))
            run.time("text_layer", time.perf_counter() - started)
            pixels = sum(
                render_pixels(doc.sizes[n - 1], s.pdf_render_dpi, s.pdf_max_render_pixels)
                for n in scanned
            )
            if pixels > s.pdf_max_total_pixels:
                raise PayloadTooLarge(
                    f"the PDF's {len(scanned)} pages without a text layer would be "
                    f"{pixels:,} pixels to read at {s.pdf_render_dpi} dpi; the limit is "
                    f"{s.pdf_max_total_pixels:,} (send fewer pages)",
                    limit="pdf_max_total_pixels",
                    allowed=s.pdf_max_total_pixels,
                    requested=pixels,
                )
            slots = asyncio.Semaphore(s.ocr_page_concurrency)

            async def read_page(number: int) -> None:
                async with slots:  # bounds pages rendered and in flight at once
                    scan = await doc.embedded_scan(number, *s.pdf_scan_dpi_range)
                    if scan is not None:
                        name, image, media = f"page-{number}.jpg", scan, "image/jpeg"
                    else:
                        png, seconds = await doc.render_png(
                            number, s.pdf_render_dpi, s.pdf_max_render_pixels
                        )
                        run.time("render", seconds)
                        name, image, media = f"page-{number}.png", png, "image/png"
                    pages = await self._ocr(name, image, media, run, pin)
                    texts[number] = ("ocr", "\n".join(page_text(p) for p in pages))
                    run.pages_read(1)

            if scanned:
                t = time.perf_counter()
                try:
                    async with asyncio.TaskGroup() as group:
                        for number in scanned:
                            group.create_task(read_page(number))
                except* (DocsumError, UpstreamAnswered) as failed:
                    raise _first(failed) from None
                run.time("ocr", time.perf_counter() - t)
        run.pages = [
            {"number": n, "source": texts[n][0], "text": texts[n][1]} for n in sorted(texts)
        ]

    async def _text_layers(
        self, doc: PdfHandle, run: _Run
    ) -> tuple[dict[int, tuple[str, str]], list[int]]:
        """Each page's usable text layer, and the pages to OCR; at most ``max_text_bytes``
        characters are taken, and pages past that are not read at all."""
        s = self.settings
        texts: dict[int, tuple[str, str]] = {}
        scanned: list[int] = []
        left = s.max_text_bytes
        for number in range(1, doc.page_count + 1):
            if left <= 0:
                run.errors.append(_truncated(s.max_text_bytes, f"pages {number}–{doc.page_count}"))
                break
            text, chars, cut = await doc.page_text(number, s.pdf_min_text_chars, left)
            if text is None and not cut:
                scanned.append(number)
                continue
            texts[number] = ("text-layer", text or "")
            left -= chars
        return texts, scanned

    def _cap_text(self, run: _Run) -> None:
        """Cut the pages' text to ``max_text_bytes`` of UTF-8 in all, saying so in ``errors``."""
        left = self.settings.max_text_bytes
        for page in run.pages:
            data = page["text"].encode("utf-8")
            if len(data) > left:
                page["text"] = data[: max(left, 0)].decode("utf-8", "ignore")
                if not any(e.get("code") == "text_truncated" for e in run.errors):
                    run.errors.append(_truncated(self.settings.max_text_bytes, "the rest"))
            left -= len(data) + 2  # and the blank line between pages

    async def _summarize(
        self, text: str, params: SummaryParams, run: _Run, pin: str | None
    ) -> str | None:
        if not text.strip():
            run.errors.append(
                {
                    "stage": "summarize",
                    "code": "no_text",
                    "message": "no text was found in the document, so there is no summary",
                }
            )
            return None
        payload: dict[str, Any] = {"text": text}
        if params.max_sentences is not None:
            payload["max_sentences"] = params.max_sentences
        if params.ratio is not None:
            payload["ratio"] = params.ratio
        start = time.perf_counter()
        try:
            r = await self.summarizer.call(
                "POST",
                "/v1/summarize",
                content=json.dumps(payload).encode(),
                content_type="application/json",
                pin=pin,
            )
        except DocsumError as exc:
            run.errors.append(
                {"stage": "summarize", "status": exc.status, "code": exc.code}
                | {"message": exc.message, "upstream": "summarizer"}
            )
            return None
        finally:
            run.time("summarize", time.perf_counter() - start)
        run.backends["summarizer"] = r.version
        body = r.json() if r.content_type.startswith("application/json") else {}
        if r.status == 200 and isinstance(body.get("summary"), str):
            return str(body["summary"])
        err = body.get("error", {}) if isinstance(body, dict) else {}
        run.errors.append(
            {
                "stage": "summarize",
                "status": r.status,
                "code": err.get("code", "upstream_error"),
                "message": f"summarizer: {err.get('message', 'unexpected answer')}",
                "upstream": "summarizer",
            }
        )
        return None


def _truncated(limit: int, left_out: str) -> dict[str, Any]:
    return {
        "stage": "text",
        "code": "text_truncated",
        "message": f"the document's text is over {limit:,} bytes: the first {limit:,} were "
        f"read and summarized, {left_out} left out",
    }


def _tiff_frame(data: bytes, index: int) -> bytes:
    """Frame ``index`` of a TIFF as a TIFF of its own: the same pixels, losslessly."""
    img = open_image(data, "tiff")
    img.seek(index)
    out = io.BytesIO()
    extra = {"dpi": img.info["dpi"]} if "dpi" in img.info else {}
    img.save(out, "TIFF", compression="tiff_adobe_deflate", **extra)
    return out.getvalue()


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    """The first leaf of an exception group (one failed page fails the document)."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc
