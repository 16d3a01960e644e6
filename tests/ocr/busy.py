"""Pages that keep the OCR service busy: small files whose page analysis finds about a
thousand "text lines" a page (row 3 of issue 21, as an image the OCR service reads directly)."""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from tests.support.documents import encode


@cache
def rectangles_tiff(
    pages: int = 6, size: tuple[int, int] = (2550, 3300), rectangles: int = 20_000, seed: int = 21
) -> bytes:
    """A bilevel (Group 4) TIFF of ``pages`` pages of ``size`` px (Letter at 300 dpi) strewn
    with small filled rectangles, each taken for a glyph: ~800 lines a page, ~80 KB a page."""
    rng = np.random.default_rng(seed)
    w, h = size
    frames = []
    for _ in range(pages):
        img = Image.new("L", size, 255)
        draw = ImageDraw.Draw(img)
        xs, ys = (
            rng.uniform(0.06 * w, 0.93 * w, rectangles),
            rng.uniform(0.045 * h, 0.95 * h, rectangles),
        )
        ws, hs = rng.uniform(4, 25, rectangles), rng.uniform(4, 17, rectangles)
        for x, y, dx, dy in zip(xs, ys, ws, hs, strict=True):
            draw.rectangle((x, y, x + dx, y + dy), fill=0)
        frames.append(img.convert("1"))
    return encode(frames, "TIFF", compression="group4")
