"""Bytes in, grey pages out: sniff the format, refuse what is too big before decoding it.

Accepted: PNG, JPEG, TIFF (every frame is a page), BMP, WebP. The format comes from the
file's first bytes, never from its name or declared content type. Every frame's size is read
from the headers and checked against the limits, per page and in total, *before* any pixel is
decoded (:func:`plan_pages`), so a decompression bomb (a few KB that inflate to gigapixels)
costs nothing; then pages are decoded one at a time, as they are read (:func:`decode_page`).
EXIF orientation is applied; colour, palette, 16-bit and bilevel images become 8-bit grey;
transparency is flattened onto white.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..common.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ..common.frames import frame_sizes, open_image
from ..common.sniff import sniff as sniff_kind

#: Recognised but not read here, so the error can say what the file is.
_OTHER: tuple[tuple[bytes, str], ...] = (
    (b"GIF8", "GIF"),
    (b"PK\x03\x04", "ZIP"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
)
SUPPORTED = ("png", "jpeg", "tiff", "bmp", "webp")


@dataclass(frozen=True)
class Limits:
    """What one request may ask the decoder for."""

    max_pixels: int = 60_000_000
    max_side: int = 20_000
    max_pages: int = 50
    max_total_pixels: int = 450_000_000


@dataclass(frozen=True)
class Plan:
    """A file's pages, sized from its headers and within the limits: what decoding will cost."""

    kind: str
    sizes: list[tuple[int, int]]

    @property
    def pixels(self) -> int:
        """Pixels of all pages together (one byte each once decoded to grey)."""
        return sum(w * h for w, h in self.sizes)


def sniff(data: bytes) -> str:
    """The image format of ``data`` (one of :data:`SUPPORTED`); 415 for anything else."""
    kind = sniff_kind(data[:2048])
    if kind in SUPPORTED:
        return kind
    if kind == "pdf":
        raise UnsupportedMediaType(
            "the file is a PDF; the OCR service reads PNG, JPEG, TIFF, BMP and WebP "
            "(send PDFs to the gateway's /api/v1/documents:summarize)"
        )
    for magic, what in _OTHER:
        if data.startswith(magic):
            raise UnsupportedMediaType(
                f"the file is a {what}; the OCR service reads PNG, JPEG, TIFF, BMP and WebP"
            )
    raise UnsupportedMediaType(
        "the file is not an image this service reads (PNG, JPEG, TIFF, BMP, WebP): "
        f"its first bytes are {data[:8]!r}"
    )


def plan_pages(data: bytes, limits: Limits = Limits()) -> Plan:
    """Sniff ``data`` and size its pages from the headers; 413 over a limit, 415/422 for a
    file that is not a readable image. Nothing is decoded."""
    if not data:
        raise InvalidInput("the file is empty (0 bytes)")
    kind = sniff(data)
    with _read_errors(kind):
        sizes = frame_sizes(data, kind, limits.max_pages)
    if len(sizes) > limits.max_pages:
        raise PayloadTooLarge(
            f"the TIFF has more than {limits.max_pages} pages; at most {limits.max_pages} are "
            "read per request",
            limit="max_pages",
            allowed=limits.max_pages,
        )
    for index, size in enumerate(sizes):
        _check_size(size, index, len(sizes), limits)
    plan = Plan(kind, sizes)
    if plan.pixels > limits.max_total_pixels:
        raise PayloadTooLarge(
            f"the {len(sizes)} pages hold {plan.pixels:,} pixels in all; the limit is "
            f"{limits.max_total_pixels:,} per request (send fewer pages, or scan at 300 dpi)",
            limit="max_total_pixels",
            allowed=limits.max_total_pixels,
            requested=plan.pixels,
        )
    return plan


def decode_page(data: bytes, plan: Plan, index: int) -> np.ndarray:
    """Page ``index`` (from 0) of a planned file as grey uint8 ``[H, W]``."""
    with _read_errors(plan.kind):
        img = open_image(data, plan.kind)
        if index:
            img.seek(index)
        if img.size != plan.sizes[index]:
            raise InvalidInput(f"page {index + 1} changed size between reads: a broken file")
        return _to_grey(img)


def decode_pages(data: bytes, limits: Limits = Limits()) -> list[np.ndarray]:
    """Every page of ``data`` decoded (for the CLI and evaluation; the service decodes a
    page at a time)."""
    plan = plan_pages(data, limits)
    return [decode_page(data, plan, i) for i in range(len(plan.sizes))]


@contextmanager
def _read_errors(kind: str) -> Iterator[None]:
    """Pillow's errors for a broken file as 422s that say what is wrong."""
    try:
        yield
    except (InvalidInput, PayloadTooLarge, UnsupportedMediaType):
        raise
    except UnidentifiedImageError:
        raise InvalidInput(f"the file starts like {kind.upper()} but could not be read") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError) as exc:
        # Truncated data, bad chunks, broken IFDs: Pillow raises a zoo of types for them.
        raise InvalidInput(f"the {kind.upper()} file is corrupt or truncated: {exc}") from None


def _check_size(size: tuple[int, int], index: int, pages: int, limits: Limits) -> None:
    w, h = size
    where = f"page {index + 1} is" if pages > 1 else "the image is"
    if w <= 0 or h <= 0:
        raise InvalidInput(f"{where} {w}×{h} pixels: nothing to read")
    if max(w, h) > limits.max_side:
        raise PayloadTooLarge(
            f"{where} {w}×{h} pixels; the longest side may be at most {limits.max_side} pixels",
            limit="max_side",
            allowed=limits.max_side,
        )
    if w * h > limits.max_pixels:
        raise PayloadTooLarge(
            f"{where} {w}×{h} = {w * h:,} pixels; the limit is {limits.max_pixels:,} pixels "
            "(scan at 300 dpi or split the document)",
            limit="max_pixels",
            allowed=limits.max_pixels,
            requested=w * h,
        )


def _to_grey(img: Image.Image) -> np.ndarray:
    """One decoded frame → grey uint8, upright, transparency on white."""
    img.load()
    img = ImageOps.exif_transpose(img) or img
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.full_like(arr, 255.0)
        return np.ascontiguousarray(scaled.astype(np.uint8))
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    if img.mode == "CMYK":
        img = img.convert("RGB")
    grey = img.convert("L")
    return np.ascontiguousarray(np.asarray(grey, dtype=np.uint8))
