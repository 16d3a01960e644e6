"""Which way round the page is: dark text on light paper, or light text on dark."""

from __future__ import annotations

import cv2
import numpy as np

from .config import LayoutConfig


def grey_range(gray: np.ndarray) -> tuple[int, int]:
    """The 1st and 99th percentile grey levels (a histogram, not a sort: cheap on big pages)."""
    hist = np.bincount(gray.ravel(), minlength=256)
    cdf = np.cumsum(hist)
    n = int(cdf[-1])
    lo = int(np.searchsorted(cdf, 0.01 * n))
    hi = int(np.searchsorted(cdf, 0.99 * n))
    return lo, hi


def detect_polarity(gray: np.ndarray, config: LayoutConfig) -> tuple[bool, np.ndarray]:
    """``(inverted, ink)`` for a grey page (uint8 ``[h, w]``).

    Glyph strokes are a minority of any window around them, so they stand out from the local
    mean much further than the paper between them does: on a dark-on-light page the pixels
    clearly darker than their surroundings outnumber the clearly lighter ones, and the other
    way round on an inverted page. Edges of big dark areas (scan borders, pictures) add to both
    counts alike. The window is a fixed fraction of the page (the text size is not known yet).

    ``ink`` (uint8 0/1) is the rough mask of text pixels in the chosen polarity, good enough to
    measure the text height.
    """
    h, w = gray.shape
    lo, hi = grey_range(gray)
    win = max(3, min(h, w) // 25) | 1
    mean = cv2.blur(gray, (win, win), borderType=cv2.BORDER_REPLICATE)
    c = max(8.0, config.polarity_contrast * (hi - lo))
    # int16 differences: mean - gray > c  ⇔  clearly darker
    diff = mean.astype(np.int16) - gray.astype(np.int16)
    darker = diff > c
    lighter = diff < -c
    inverted = int(np.count_nonzero(lighter)) > int(np.count_nonzero(darker))
    ink = lighter if inverted else darker
    return inverted, ink.view(np.uint8)
