"""The page's typical glyph height: the unit every other length of page analysis is given in."""

from __future__ import annotations

import cv2
import numpy as np


def estimate_text_height(stats: np.ndarray, shape: tuple[int, int]) -> float:
    """Typical glyph height in px from ``cv2.connectedComponentsWithStats`` stats (row 0 is
    the background), or 0.0 when nothing looks like text.

    The mode of the glyph heights on a log scale, each component weighted by its height (so
    that specks of noise, many but small, do not outvote the letters), then the median of the
    heights near that mode: about the x-height of lower-case text, the cap height of capitals.
    """
    if len(stats) <= 1:
        return 0.0
    h: np.ndarray = stats[1:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    w: np.ndarray = stats[1:, cv2.CC_STAT_WIDTH].astype(np.float64)
    ph, pw = shape
    keep = (h >= 3) & (h < ph / 4) & (w < pw / 4) & (w < 6 * h) & (h < 15 * w)
    if np.count_nonzero(keep) < 2:
        return 0.0
    h = h[keep]
    logs = np.log2(h)
    bin_w = 0.1  # ~7 % steps
    idx = ((logs - logs.min()) / bin_w).astype(np.int64)
    hist = np.convolve(np.bincount(idx, weights=h), [1.0, 2.0, 1.0], mode="same")
    mode = 2.0 ** (logs.min() + (int(np.argmax(hist)) + 0.5) * bin_w)
    near = h[(h > mode / 1.5) & (h < mode * 1.5)]
    return float(np.median(near)) if near.size else float(mode)
