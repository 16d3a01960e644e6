"""The page's typical glyph height: the unit every other length of page analysis is given in."""

from __future__ import annotations

import cv2
import numpy as np


def estimate_text_height(stats: np.ndarray, shape: tuple[int, int]) -> float:
    """Typical glyph height in px from ``cv2.connectedComponentsWithStats`` stats (row 0 is
    the background), or 0.0 when nothing looks like text.

    The size class holding the most glyphs: the peak of the glyph heights' density on a log
    scale, smoothed over about ±20 % so that one font's x-height, capitals and ascenders count
    as one class (and a few lines of big type do not outvote many lines of body text), then
    the median of the heights within a factor 1.5 of that peak: about the x-height of
    lower-case text, the cap height of capitals. Specks under 3 px are left out.
    """
    if len(stats) <= 1:
        return 0.0
    h = stats[1:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    w = stats[1:, cv2.CC_STAT_WIDTH].astype(np.float64)
    ph, pw = shape
    # Not the page's frame or a picture filling it (a single line may fill most of an image).
    keep = (h >= 3) & (w >= 2) & (h < 0.9 * ph) & (w < 0.9 * pw) & (w < 6 * h) & (h < 15 * w)
    if np.count_nonzero(keep) < 2:
        return 0.0
    logs = np.log2(h[keep])
    bin_w = 0.05
    lo = float(logs.min())
    counts = np.bincount(((logs - lo) / bin_w).astype(np.int64)).astype(np.float64)
    sigma = 0.15 / bin_w  # bins; 0.15 in log2 is about ±11 %
    k = np.arange(-int(3 * sigma), int(3 * sigma) + 1)
    density = np.convolve(counts, np.exp(-0.5 * (k / sigma) ** 2), mode="same")
    mode = 2.0 ** (lo + (int(np.argmax(density)) + 0.5) * bin_w)
    hk = h[keep]
    near = hk[(hk > mode / 1.5) & (hk < mode * 1.5)]
    return float(np.median(near)) if near.size else float(mode)
