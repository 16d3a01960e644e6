"""The OCR engine: pages → line crops (layout) → text (recognizer), with no HTTP in sight.

The service runs the two halves separately — page analysis in a thread pool, a page at a
time; recognition through the dynamic batcher, one forward pass per call, so line crops of
concurrent requests share passes — while the CLI and the benchmarks call
:meth:`OCREngine.read_stream`, which reads documents in chunks, every line of a chunk in one
recognizer call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from ..common.metrics import stage_timer
from ..common.torch_device import configure_runtime
from .layout import AnalysisStopped, LayoutConfig, LineCrop, StopCheck, analyze_page
from .metrics import OCR_ANALYSES_STOPPED, OCR_LINES, OCR_PAGES
from .model.ctc import Decoded
from .model.spacing import tidy_text
from .recognize import Recognizer
from .settings import OCRSettings

log = logging.getLogger(__name__)

Mode = Literal["page", "line"]
T = TypeVar("T")


@dataclass(frozen=True)
class Line:
    text: str
    confidence: float
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Page:
    number: int
    width: int
    height: int
    lines: list[Line]
    skew_deg: float = 0.0

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines if line.text)


#: A reading the recognizer is this unsure of (mean per-character probability) is not text.
JUNK_MAX_MEAN_PROB = 0.6


def is_junk(reading: Decoded) -> bool:
    """A speck, an ornament, a bit of a picture or a map that page analysis took for text.

    They read at a low mean character probability ('4ge', '[)', 'UeRXACE=>aE2%^'), where
    real text, even a lone page number or a worn line, reads high (docs/decisions.md, "Junk
    readings left out of page text").
    """
    if not reading.text.strip():
        return True
    return bool(reading.char_probs) and reading.mean_char_prob < JUNK_MAX_MEAN_PROB


@dataclass(frozen=True)
class PageCrops:
    """A page cut into line crops, waiting for the recognizer."""

    number: int
    width: int
    height: int
    crops: list[LineCrop]
    skew_deg: float = 0.0
    #: Page mode: readings that are not text (:func:`is_junk`) are left out.
    drop_junk: bool = False

    def assemble(self, readings: Sequence[Decoded]) -> Page:
        """Readings of :attr:`crops` (same order) → the page's text lines.

        Page analysis may cut one text row into pieces at wide gaps (a receipt's "TOTAL ...
        12.50"); the pieces of a row become one line: texts joined by a space, the union of
        their boxes, the lowest confidence.
        """
        lines: list[Line] = []
        row: int | None = None
        for crop, reading in zip(self.crops, readings, strict=True):
            if self.drop_junk and is_junk(reading):
                continue
            if lines and crop.row == row:
                last = lines[-1]
                text = tidy_text(f"{last.text} {reading.text}") if reading.text else last.text
                x0, y0, x1, y1 = last.box
                b = crop.box
                box = (min(x0, b[0]), min(y0, b[1]), max(x1, b[2]), max(y1, b[3]))
                lines[-1] = Line(
                    text.strip(), min(last.confidence, round(reading.confidence, 4)), box
                )
            else:
                lines.append(Line(reading.text, round(reading.confidence, 4), crop.box))
            row = crop.row
        OCR_PAGES.inc()
        OCR_LINES.inc(len(lines))
        return Page(self.number, self.width, self.height, lines, round(self.skew_deg, 2))


def by_width(crops: Sequence[np.ndarray]) -> list[int]:
    """Indices of ``crops`` from the narrowest to the widest once scaled to one height: read in
    this order, a forward pass holds crops of similar width, padded little (one wide crop
    among narrow ones makes the whole pass as wide as it)."""
    return sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / max(1, crops[i].shape[0]))


def document_text(pages: Sequence[Page]) -> str:
    """Pages' text, a blank line between pages."""
    return "\n\n".join(p.text for p in pages if p.text)


class OCREngine:
    """Layout analysis plus a loaded :class:`Recognizer`."""

    name = "crnn"

    def __init__(self, settings: OCRSettings) -> None:
        self.settings = settings
        self.layout_config = LayoutConfig()
        self.recognizer = Recognizer(
            settings.weights,
            device=settings.device,
            precision=settings.precision,
            forward_batch=settings.batch.max_batch_size or None,
            try_rotations=settings.try_rotations,
            ascii_only=settings.ascii,
        )

    @property
    def version(self) -> str:
        return self.recognizer.version

    @property
    def device(self) -> str:
        return str(self.recognizer.device)

    def load(self) -> None:
        configure_runtime(self.settings.torch_threads, self.settings.keep_freed_memory)
        self.recognizer.load()

    def warmup(self) -> None:
        """One rendered page through both halves, so lazy initialisation happens now."""
        from PIL import Image, ImageDraw, ImageFont

        img = Image.new("L", (900, 300), 255)
        draw, font = ImageDraw.Draw(img), ImageFont.load_default(size=28)
        for i, text in enumerate(("Warm-up line one, 1234.", "The second line: 56.78 %")):
            draw.text((40, 40 + 60 * i), text, font=font, fill=0)
        started = time.perf_counter()
        page = np.asarray(img)
        crops = self.cut(page, 1, "page")
        self.recognize([c.image for c in crops.crops] + [page[30:90, 20:600]])
        log.info(
            "warm-up done",
            extra={"seconds": round(time.perf_counter() - started, 3), "lines": len(crops.crops)},
        )

    def cut(
        self, page: np.ndarray, number: int, mode: Mode, should_stop: StopCheck | None = None
    ) -> PageCrops:
        """Page analysis: the page's line crops in reading order (line mode: the whole image).
        Raises :class:`~.layout.AnalysisStopped` once ``should_stop`` says True."""
        h, w = page.shape
        if mode == "line":
            return PageCrops(number, w, h, [LineCrop((0, 0, w, h), page)])
        try:
            with stage_timer(self.name, "detect"):
                layout = analyze_page(page, self.layout_config, should_stop)
        except AnalysisStopped:
            OCR_ANALYSES_STOPPED.inc()
            raise
        return PageCrops(number, w, h, list(layout.lines), layout.skew_deg, drop_junk=True)

    def recognize(self, crops: Sequence[np.ndarray]) -> list[Decoded | Exception]:
        """Crops through the recognizer (one forward pass for up to
        ``recognizer.forward_batch`` of them)."""
        with stage_timer(self.name, "recognize"):
            return self.recognizer.recognize(crops)

    def read_stream(
        self,
        items: Sequence[T],
        load: Callable[[T], list[np.ndarray]],
        mode: Mode = "page",
        chunk: int = 8,
    ) -> Iterator[tuple[T, list[Page] | Exception]]:
        """Read many documents in order; ``load`` turns one into its pages.

        A worker thread loads and cuts the next ``chunk`` documents while the lines of this
        chunk are recognized in one call, so both cores stay busy. A document that cannot be
        loaded or read yields its exception in its place; the others go on.
        """

        def prepare(batch: Sequence[T]) -> list[list[PageCrops] | Exception]:
            out: list[list[PageCrops] | Exception] = []
            for item in batch:
                try:
                    out.append([self.cut(p, i + 1, mode) for i, p in enumerate(load(item))])
                except Exception as exc:
                    out.append(exc)
            return out

        batches = [items[i : i + chunk] for i in range(0, len(items), chunk)]
        with ThreadPoolExecutor(1, thread_name_prefix="ocr-prepare") as pool:
            ahead = [pool.submit(prepare, b) for b in batches[:1]]
            for i, batch in enumerate(batches):
                prepared = ahead.pop().result()
                if i + 1 < len(batches):
                    ahead.append(pool.submit(prepare, batches[i + 1]))
                crops = [
                    c.image
                    for doc in prepared
                    if isinstance(doc, list)
                    for pc in doc
                    for c in pc.crops
                ]
                readings = iter(self.recognize(crops))
                for item, doc in zip(batch, prepared, strict=True):
                    if isinstance(doc, Exception):
                        yield item, doc
                        continue
                    # Take this document's readings first, so a failure cannot shift the next.
                    mine = [[next(readings) for _ in pc.crops] for pc in doc]
                    try:
                        yield (
                            item,
                            [
                                pc.assemble([_or_raise(r) for r in rs])
                                for pc, rs in zip(doc, mine, strict=True)
                            ],
                        )
                    except Exception as exc:
                        yield item, exc


def _or_raise(result: Decoded | Exception) -> Decoded:
    if isinstance(result, Exception):
        raise result
    return result
