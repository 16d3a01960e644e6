"""The size of every frame of an image file, from its headers: no pixel is decoded.

What a request costs to decode is its frames' pixels; this reads them before any decode, for
the OCR service (which refuses what is over its limits) and the gateway (which charges a
request's rate limit by its pages). Pillow only: the gateway has no numpy.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image

#: Pillow's own bomb check is replaced by the callers' (which say what the limit is).
Image.MAX_IMAGE_PIXELS = None
# Pillow warns about odd metadata; the callers check what matters. A filter, not
# catch_warnings(): pages are decoded in threads, and catch_warnings is process-wide state.
warnings.filterwarnings("ignore", module=r"PIL\.")

#: sniff kind → Pillow's format name.
PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "bmp": "BMP", "webp": "WEBP"}


def open_image(data: bytes, kind: str) -> Image.Image:
    """``data`` opened lazily as ``kind`` (headers read, pixels not)."""
    return Image.open(io.BytesIO(data), formats=[PIL_FORMATS[kind]])


def frame_sizes(data: bytes, kind: str, max_frames: int) -> list[tuple[int, int]]:
    """(width, height) of each frame: a TIFF's pages, one frame for other formats.

    Stops after ``max_frames + 1`` frames, so a file of a million frames costs no more to
    refuse than one just over the limit. Raises Pillow's errors for a file it cannot read.
    """
    img = open_image(data, kind)
    if kind != "tiff":
        return [img.size]
    sizes: list[tuple[int, int]] = []
    while len(sizes) <= max_frames:
        sizes.append(img.size)
        try:
            img.seek(len(sizes))  # reads the next frame's header (IFD) only
        except EOFError:
            break
    return sizes
