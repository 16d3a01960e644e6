"""Text images made in code for the OCR tests, with Pillow's bundled scalable font (no system
fonts needed, so CI renders exactly what a developer's machine does)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LINES = (
    "The quick brown fox jumps over 13 lazy dogs.",
    "Invoice 2024-0117 was paid on Monday, 9 May.",
    "Call the office before noon to book a room.",
    "Prices rose by 4 per cent in the last quarter.",
    "Send the signed copy back within ten days.",
)


def font(size: int = 28) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)  # type: ignore[return-value]


def line_image(text: str, size: int = 28, pad: int = 10) -> Image.Image:
    """One dark-on-white text line."""
    f = font(size)
    w = int(f.getlength(text)) + 2 * pad
    img = Image.new("L", (w, int(size * 1.6)), 255)
    ImageDraw.Draw(img).text((pad, size // 4), text, font=f, fill=0)
    return img


def page_image(
    lines: tuple[str, ...] = LINES, size: int = 28, width: int = 1000, gap: float = 2.2
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A one-column page and the ink boxes of its lines (x0, y0, x1, y1)."""
    f = font(size)
    step = int(size * gap)
    img = Image.new("L", (width, 80 + step * len(lines)), 255)
    draw = ImageDraw.Draw(img)
    boxes = []
    for i, text in enumerate(lines):
        xy = (60, 40 + i * step)
        draw.text(xy, text, font=f, fill=0)
        boxes.append(tuple(int(v) for v in draw.textbbox(xy, text, font=f)))
    return img, boxes  # type: ignore[return-value]


def encode(img: Image.Image | list[Image.Image], fmt: str, **kw: object) -> bytes:
    """Image(s) → file bytes (a list becomes a multi-page TIFF)."""
    buf = io.BytesIO()
    if isinstance(img, list):
        img[0].save(buf, fmt, save_all=True, append_images=img[1:], **kw)
    else:
        img.save(buf, fmt, **kw)
    return buf.getvalue()


def grey(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"))
