"""Page analysis: a grey page in, its text lines in reading order out, as crops for the
recognizer.

probe (small copy: polarity, text height) → analysis scale (text about
``analysis_text_height_px`` tall) → ink mask (background-normalized) → glyphs → skew →
upright glyphs → lines → reading order → crops cut from the input page.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .binarize import binarize
from .components import classify, components
from .config import LayoutConfig
from .crops import cut_lines
from .deskew import Deskew, estimate_skew
from .lines import find_pieces, join_rows
from .order import reading_order
from .polarity import detect_polarity, grey_range
from .textsize import estimate_text_height
from .types import PageLayout

#: Pages with a side shorter than this (px) hold no line.
MIN_SIDE = 4
#: Re-analyse at another scale when the text height found there is this far off the target.
RESCALE_FACTOR = 1.6


def _resize(page: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return page
    h, w = page.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(page, size, interpolation=cv2.INTER_AREA)


def _as_grey(page: np.ndarray) -> np.ndarray:
    if not isinstance(page, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(page).__name__}")
    if page.ndim == 3 and page.shape[2] == 1:
        page = page[:, :, 0]
    if page.ndim != 2:
        raise ValueError(f"expected a grey page [H, W], got shape {page.shape}")
    if page.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {page.dtype}")
    return np.ascontiguousarray(page)


def analyze_page(page: np.ndarray, config: LayoutConfig | None = None) -> PageLayout:
    """Find the text lines of a page, in reading order, with upright crops for the recognizer.

    page: uint8 grey ``[H, W]`` (colour conversion and EXIF orientation are done before).
    A page without text (blank, or too small) gives no lines; raises ``ValueError`` only for
    an array that is not a grey image.
    """
    cfg = config or LayoutConfig()
    page = _as_grey(page)
    h_in, w_in = page.shape
    if min(h_in, w_in) < MIN_SIDE:
        return PageLayout([], 0.0, False, 0)

    scale0 = min(1.0, cfg.probe_side_px / max(h_in, w_in))
    probe = _resize(page, scale0)
    inverted, rough = detect_polarity(probe, cfg)
    th_probe = estimate_text_height(components(rough), rough.shape)
    if th_probe <= 0:
        return PageLayout([], 0.0, inverted, 0)

    # Analyse where the text is about `target` px tall; if the text height measured there is
    # far off (the probe saw it too small or too coarse), once more at the corrected scale.
    target = cfg.analysis_text_height_px
    scale = min(1.0, scale0 * target / th_probe)
    if abs(scale - scale0) <= 0.2 * scale0:
        scale = scale0
    th_expected = th_probe * scale / scale0
    for attempt in range(2):
        image = probe if scale == scale0 else _resize(page, scale)
        gray = cv2.bitwise_not(image) if inverted else image
        ink, dark = binarize(gray, th_expected, cfg)
        stats = components(ink)
        th = estimate_text_height(stats, ink.shape)
        if th <= 0:
            return PageLayout([], 0.0, inverted, 0)
        better = min(1.0, scale * target / th)
        if attempt or max(better / scale, scale / better) < RESCALE_FACTOR:
            break
        th_expected, scale = th * better / scale, better
    sx, sy = ink.shape[1] / w_in, ink.shape[0] / h_in

    glyphs = classify(ink, dark, stats, th, cfg)
    normal = glyphs.seed & ~glyphs.large
    skew = estimate_skew(
        (glyphs.x0[normal] + glyphs.x1[normal]) / 2.0,
        (glyphs.y0[normal] + glyphs.y1[normal]) / 2.0,
        th,
        cfg,
    )
    if abs(skew) < cfg.min_skew_deg:
        skew = 0.0
    deskew = Deskew.for_page(w_in, h_in, skew)
    if deskew.rotates:
        size = (math.ceil(deskew.size[0] * sx), math.ceil(deskew.size[1] * sy))
        m = deskew.scaled(sx, sy)
        ink = cv2.warpAffine(ink, m, size, flags=cv2.INTER_NEAREST)
        dark = cv2.warpAffine(dark, m, size, flags=cv2.INTER_NEAREST)
        glyphs = classify(ink, dark, components(ink), th, cfg)

    pieces = find_pieces(glyphs, th, dark, cfg)
    # Pictures and dark areas take part in the reading order as blocks of a column (a picture
    # with its caption beside a column of text), then drop out of the rows.
    n = len(pieces)
    blocks = np.vstack([pieces.boxes, glyphs.pictures, glyphs.dark_areas])
    rows, columns = reading_order(blocks, th, cfg)
    rows = [kept for kept in ([i for i in row if i < n] for row in rows) if kept]
    boxes = join_rows(pieces.boxes, rows, th, cfg)
    lo, hi = grey_range(probe)
    crops = cut_lines(
        page,
        boxes,
        (sx, sy),
        deskew,
        inverted=inverted,
        paper=lo if inverted else hi,
        text_height=th,
        config=cfg,
    )
    return PageLayout(crops, skew, inverted, columns if crops else 0, th / ((sx + sy) / 2.0))
