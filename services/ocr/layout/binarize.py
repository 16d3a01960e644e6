"""Ink mask of a dark-on-light page, robust to uneven light (shadows, gradients, yellowed paper).

The paper's brightness is estimated everywhere by a max filter wider than any stroke (it erases
the glyphs and keeps the slow illumination changes), smoothed at a coarse scale; each pixel is
then compared with the paper behind it. Ink is what is darker than halfway between the paper
and the page's typical ink level, so faint print and bold print on the same page both come out.
"""

from __future__ import annotations

import cv2
import numpy as np

from .config import LayoutConfig
from .polarity import grey_range

#: Paper darker than this fraction of the page's usual paper brightness is no paper.
DARK_PAPER = 0.5
#: ...over a window this many text heights wide.
DARK_AREA = 8.0


def estimate_paper(
    gray: np.ndarray, text_height: float, config: LayoutConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Paper brightness behind every pixel (uint8, same shape as ``gray``), and the mask of
    areas that are no paper (bool): dark on average over ``DARK_AREA`` th, or with a dark
    paper estimate (scan borders, black areas of pictures), where no dark-on-light text is."""
    h, w = gray.shape
    # At least 1/60 of the page: the text height may be underestimated on a first look
    # (broken print), and a window narrower than the strokes would keep them as paper.
    k = max(3, round(config.background_window * text_height), min(h, w) // 60) | 1
    paper = cv2.dilate(gray, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    # Smooth at about half a text height per pixel: cheap, and illumination varies slowly.
    f = max(1.0, text_height / 2.0)
    sw, sh = max(1, round(w / f)), max(1, round(h / f))
    small = cv2.resize(paper, (sw, sh), interpolation=cv2.INTER_AREA)
    small = cv2.blur(cv2.dilate(small, np.ones((3, 3), np.uint8)), (3, 3))
    _, bright = grey_range(small)
    r = max(3, round(DARK_AREA * text_height / f)) | 1
    mean = cv2.blur(cv2.resize(gray, (sw, sh), interpolation=cv2.INTER_AREA), (r, r))
    dark_small = ((mean < DARK_PAPER * bright) | (small < DARK_PAPER * bright)).view(np.uint8)
    paper = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    no_paper = cv2.resize(dark_small, (w, h), interpolation=cv2.INTER_NEAREST)
    return paper, no_paper.view(bool)


def binarize(
    gray: np.ndarray, text_height: float, config: LayoutConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Ink mask and dark-area mask (uint8 0/1 each) of a dark-on-light grey page;
    ``text_height`` in px.

    Dark areas (scan borders, photos) are no paper and hold no ink. The ink mask is empty when
    nothing on the page is darker than the paper by at least ``config.min_ink_contrast`` (a
    blank page).
    """
    paper, no_paper = estimate_paper(gray, text_height, config)
    ratio = gray.astype(np.float32) / np.maximum(paper, 1).astype(np.float32)
    ratio[no_paper] = 1.0
    dark = ratio[ratio < 1.0 - config.min_ink_contrast]
    if dark.size == 0:
        return np.zeros(gray.shape, np.uint8), no_paper.view(np.uint8)
    ink_level = float(np.median(dark))
    threshold = min(0.5 * (1.0 + ink_level), 1.0 - config.min_ink_contrast)
    return (ratio < threshold).view(np.uint8), no_paper.view(np.uint8)
