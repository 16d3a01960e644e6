"""Bytes in, grey pages out: sniff the format, refuse what is too big before decoding it.

Accepted: PNG, JPEG, TIFF (every frame is a page), BMP, WebP. The format comes from the
file's first bytes, never from its name or declared content type. Sizes are read from the
header and checked against the limits *before* any pixel is decoded, so a decompression bomb
(a few KB that inflate to gigapixels) costs nothing. EXIF orientation is applied; colour,
palette, 16-bit and bilevel images become 8-bit grey; transparency is flattened onto white.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..common.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ..common.sniff import sniff as sniff_kind

#: Pillow's own bomb check is replaced by ours (which runs first and says what the limit is).
Image.MAX_IMAGE_PIXELS = None

#: Recognised but not read here, so the error can say what the file is.
_OTHER: tuple[tuple[bytes, str], ...] = (
    (b"GIF8", "GIF"),
    (b"PK\x03\x04", "ZIP"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
)
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "bmp": "BMP", "webp": "WEBP"}
SUPPORTED = ("png", "jpeg", "tiff", "bmp", "webp")


@dataclass(frozen=True)
class Limits:
    """What one request may ask the decoder for."""

    max_pixels: int = 60_000_000
    max_side: int = 20_000
    max_pages: int = 50


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


def decode_pages(data: bytes, limits: Limits = Limits()) -> list[np.ndarray]:
    """Decode ``data`` into grey uint8 pages ``[H, W]`` (one per TIFF frame)."""
    if not data:
        raise InvalidInput("the file is empty (0 bytes)")
    fmt = sniff(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about odd metadata; we check pixels
            img = Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]])
            pages = _frame_count(img, fmt, limits)
            out = []
            for index in range(pages):
                if index:
                    img.seek(index)
                _check_size(img.size, index, pages, limits)
                out.append(_to_grey(img))
            return out
    except (InvalidInput, PayloadTooLarge, UnsupportedMediaType):
        raise
    except UnidentifiedImageError:
        raise InvalidInput(f"the file starts like {fmt.upper()} but could not be read") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError) as exc:
        # Truncated data, bad chunks, broken IFDs: Pillow raises a zoo of types for them.
        raise InvalidInput(f"the {fmt.upper()} file is corrupt or truncated: {exc}") from None


def _frame_count(img: Image.Image, fmt: str, limits: Limits) -> int:
    pages = int(getattr(img, "n_frames", 1)) if fmt == "tiff" else 1
    if pages > limits.max_pages:
        raise PayloadTooLarge(
            f"the TIFF has {pages} pages; at most {limits.max_pages} are read per request"
        )
    return pages


def _check_size(size: tuple[int, int], index: int, pages: int, limits: Limits) -> None:
    w, h = size
    where = f"page {index + 1} is" if pages > 1 else "the image is"
    if w <= 0 or h <= 0:
        raise InvalidInput(f"{where} {w}×{h} pixels: nothing to read")
    if max(w, h) > limits.max_side:
        raise PayloadTooLarge(
            f"{where} {w}×{h} pixels; the longest side may be at most {limits.max_side} pixels"
        )
    if w * h > limits.max_pixels:
        raise PayloadTooLarge(
            f"{where} {w}×{h} = {w * h:,} pixels; the limit is {limits.max_pixels:,} pixels "
            "(scan at 300 dpi or split the document)"
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
