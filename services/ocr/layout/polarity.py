"""Which way round the page is: dark text on light paper, or light text on dark."""

from __future__ import annotations

import cv2
import numpy as np

from .config import LayoutConfig


def grey_range(gray: np.ndarray) -> tuple[int, int]:
    """The 1st and 99th percentile grey levels (a histogram, not a sort: cheap on big pages)."""
    hist = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
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
    counts alike. "Clearly" is ``polarity_contrast`` of the page's strongest local contrast
    (the 99.9th percentile of the deviations either way), so faint print on a white page
    counts as well as black print. The window is a fixed fraction of the page (the text size
    is not known yet).

    ``ink`` (uint8 0/1) is the rough mask of text pixels in the chosen polarity, good enough to
    measure the text height: pixels beyond half that contrast threshold, so faint strokes
    next to a dark pen mark stay whole.
    """
    h, w = gray.shape
    # A fraction of the page; on a long strip (a single line) of its length.
    win = min(max(3, min(h, w) // 25, max(h, w) // 50), min(h, w)) | 1
    mean = cv2.blur(gray, (win, win), borderType=cv2.BORDER_REPLICATE)
    diff = mean.astype(np.int16) - gray.astype(np.int16)  # > 0: darker than around it
    hist = np.bincount((diff + 255).ravel(), minlength=511)
    cdf = np.cumsum(hist)
    n = int(cdf[-1])
    darkest = int(np.searchsorted(cdf, 0.999 * n)) - 255  # 99.9th percentile of diff
    lightest = 255 - int(np.searchsorted(cdf, 0.001 * n))  # of -diff
    c = max(8.0, config.polarity_contrast * max(darkest, lightest))
    darker = diff > c
    lighter = diff < -c
    inverted = int(np.count_nonzero(lighter)) > int(np.count_nonzero(darker))
    ink = diff < -c / 2 if inverted else diff > c / 2
    return inverted, ink.view(np.uint8)
