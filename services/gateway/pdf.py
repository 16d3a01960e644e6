"""PDF pages → text: the text layer where a page has a usable one, else a rendered image.

pypdfium2 (PDFium) reads the PDF. Forms are not initialised, so a PDF's JavaScript never runs.
PDFium is not thread-safe: every call into it holds one process-wide lock, for one page at a
time. The gateway runs this module in worker processes, one document each (``pdfpool.py``),
so a costly page holds up neither the gateway nor another document. Whatever PDFium cannot
read (a damaged file, a page tree that promises pages it does not have) is a 422 that says
which page.
"""

from __future__ import annotations

import io
import threading
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from ..common.errors import InvalidInput

_PDFIUM_LOCK = threading.Lock()


@contextmanager
def _page_errors(number: int, pages: int) -> Iterator[None]:
    """PDFium's errors on page ``number`` as a 422 that names the page."""
    try:
        yield
    except pdfium.PdfiumError as exc:
        raise InvalidInput(
            f"page {number} of the PDF's {pages} cannot be read ({exc}): the file is damaged "
            "(its page tree may promise pages it does not have)"
        ) from None


def usable_text(text: str, min_chars: int) -> bool:
    """Whether a text layer reads as text: enough letters/digits, little garbage.

    Broken font encodings yield private-use or control characters instead of letters; such
    a layer is worse than OCR.
    """
    visible = [c for c in text if not c.isspace()]
    alnum = sum(c.isalnum() for c in visible)
    garbage = sum(
        unicodedata.category(c) in ("Co", "Cc", "Cn", "Cs") or c == "\ufffd" for c in visible
    )
    return alnum >= min_chars and garbage <= 0.1 * len(visible)


class PdfDocument:
    """An open PDF; close it (or use ``with``) when done."""

    def __init__(self, data: bytes, max_pages: int) -> None:
        with _PDFIUM_LOCK:
            try:
                self._doc = pdfium.PdfDocument(data)
            except pdfium.PdfiumError as exc:
                if exc.err_code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
                    raise InvalidInput(
                        "the PDF is encrypted and needs a password; "
                        "send a copy without the password"
                    ) from None
                raise InvalidInput(f"the file is not a readable PDF ({exc})") from None
            self.page_count = len(self._doc)
        if self.page_count == 0:
            self.close()
            raise InvalidInput("the PDF has no pages")
        if self.page_count > max_pages:
            self.close()
            raise InvalidInput(
                f"the PDF has {self.page_count} pages; the limit is {max_pages} "
                "(split the document, or raise DOCSUM_GATEWAY_PDF_MAX_PAGES)"
            )
        try:
            #: Each page's (width, height) in points, from the page tree: no page is loaded.
            self.sizes = [self._size(i) for i in range(self.page_count)]
        except InvalidInput:
            self.close()
            raise

    def _size(self, index: int) -> tuple[float, float]:
        with _PDFIUM_LOCK, _page_errors(index + 1, self.page_count):
            width, height = self._doc.get_page_size(index)
        return float(width), float(height)

    def __enter__(self) -> PdfDocument:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with _PDFIUM_LOCK:
            self._doc.close()

    def page_text(self, number: int, max_chars: int | None = None) -> tuple[str, bool]:
        """Page ``number``'s text layer (line ends as ``\\n``), at most ``max_chars``
        characters; and whether it held more."""
        with _PDFIUM_LOCK, _page_errors(number, self.page_count):
            page = self._doc[number - 1]
            try:
                textpage = page.get_textpage()
                count = textpage.count_chars()
                truncated = max_chars is not None and count > max_chars
                if max_chars is not None:
                    count = min(count, max_chars)
                text = textpage.get_text_range(0, count) if count > 0 else ""
                textpage.close()
            finally:
                page.close()
        return text.replace("\r\n", "\n").replace("\r", "\n"), truncated

    def embedded_scan(self, number: int, min_dpi: float, max_dpi: float) -> bytes | None:
        """The page's scan as the JPEG file the scanner embedded, when the page is only that.

        A scanner's PDF page is one JPEG covering the page: sending that JPEG to OCR skips
        rendering and re-encoding (most of the gateway's CPU time per scanned page) and loses
        nothing. Only when it is upright, grey or RGB, and ``min_dpi``..``max_dpi`` (the OCR
        model reads ~300 dpi); else None, and the page is rendered.
        """
        with _PDFIUM_LOCK, _page_errors(number, self.page_count):
            page = self._doc[number - 1]
            try:
                if page.get_rotation() != 0:
                    return None
                objects = list(page.get_objects(max_depth=1))
                if len(objects) != 1 or objects[0].type != pdfium_c.FPDF_PAGEOBJ_IMAGE:
                    return None
                image = objects[0]
                assert isinstance(image, pdfium.PdfImage)
                a, b, c, d, _, _ = image.get_matrix().get()
                if b or c or a <= 0 or d <= 0 or image.get_filters() != ["DCTDecode"]:
                    return None  # rotated, skewed, mirrored, or not a plain JPEG
                width_pt, height_pt = page.get_size()
                left, bottom, right, top = image.get_bounds()
                if (right - left) * (top - bottom) < 0.9 * width_pt * height_pt:
                    return None  # a picture on a page, not a scanned page
                meta = image.get_metadata()
                if meta.colorspace not in (
                    pdfium_c.FPDF_COLORSPACE_DEVICEGRAY,
                    pdfium_c.FPDF_COLORSPACE_DEVICERGB,
                ):
                    return None
                dpi_x = meta.width / ((right - left) / 72.0)
                dpi_y = meta.height / ((top - bottom) / 72.0)
                if not (min_dpi <= dpi_x <= max_dpi and min_dpi <= dpi_y <= max_dpi):
                    return None
                data = bytes(image.get_data(decode_simple=False))
                return data if data.startswith(b"\xff\xd8\xff") else None
            finally:
                page.close()

    def render(self, number: int, dpi: int, max_pixels: int) -> Image.Image:
        """Page ``number`` (from 1) as a grey image at ``dpi``, lowered to fit ``max_pixels``."""
        return self.render_timed(number, dpi, max_pixels)[0]

    def render_timed(self, number: int, dpi: int, max_pixels: int) -> tuple[Image.Image, float]:
        """:meth:`render`, and the seconds it took once PDFium was free (waits not counted)."""
        with _PDFIUM_LOCK, _page_errors(number, self.page_count):
            start = time.perf_counter()
            page = self._doc[number - 1]
            width_pt, height_pt = page.get_size()
            scale = dpi / 72.0
            pixels = width_pt * height_pt * scale * scale
            if pixels > max_pixels:
                scale *= (max_pixels / pixels) ** 0.5 * 0.995  # PDFium rounds sizes up
            bitmap = page.render(scale=scale, grayscale=True, may_draw_forms=False)
            image = bitmap.to_pil().convert("L")
            bitmap.close()
            page.close()
            return image, time.perf_counter() - start


def render_pixels(size: tuple[float, float], dpi: int, max_pixels: int) -> int:
    """Pixels of a page of ``size`` points once rendered at ``dpi`` (or lowered to
    ``max_pixels``), as :meth:`PdfDocument.render` renders it: its cost for OCR."""
    width_pt, height_pt = size
    return min(max_pixels, round(width_pt * height_pt * (dpi / 72.0) ** 2))


def render_png(doc: PdfDocument, number: int, dpi: int, max_pixels: int) -> tuple[bytes, float]:
    """Page ``number`` as PNG bytes, and the seconds spent rendering and encoding it."""
    image, seconds = doc.render_timed(number, dpi, max_pixels)
    start = time.perf_counter()
    png = encode_png(image)
    return png, seconds + time.perf_counter() - start


def encode_png(image: Image.Image) -> bytes:
    """A fast PNG (compression level 1): the OCR service decodes it a few ms later."""
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()
