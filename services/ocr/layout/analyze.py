"""Page analysis: a grey page in, its text lines in reading order out, as crops for the
recognizer.

probe (small copy: polarity, rough text height) → analysis copy (the page shrunk by a whole
factor so that text is about ``analysis_text_height_px`` tall) → ink mask (background-
normalized) → glyphs → skew → upright glyphs → line pieces → reading order → lines → crops cut
from the input page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .binarize import binarize
from .components import Glyphs, classify, components
from .config import LayoutConfig
from .crops import cut_lines
from .deskew import Deskew, estimate_skew
from .lines import find_pieces, join_rows
from .order import reading_order
from .polarity import detect_polarity, grey_range
from .textsize import estimate_text_height
from .types import AnalysisStopped, PageLayout, StopCheck

#: Pages with a side shorter than this (px) hold no line.
MIN_SIDE = 4
#: Up to this skew (degrees) glyph boxes are turned upright as boxes; beyond, the ink is.
BOX_TURN_DEG = 2.0


@dataclass(frozen=True)
class _Shrunk:
    """The page shrunk by a whole factor ``k``: pixel (x, y) covers input [k x, k x + k)."""

    image: np.ndarray
    k: int


def _shrink(page: np.ndarray, k: int) -> _Shrunk:
    """Average k × k blocks (the last < k rows and columns are left out): OpenCV's fast path
    for whole factors, a few ms even for a 600 dpi page."""
    if k <= 1:
        return _Shrunk(page, 1)
    h, w = page.shape
    hh, ww = max(1, h // k), max(1, w // k)
    block = page[: hh * k, : ww * k] if h >= k and w >= k else page
    return _Shrunk(cv2.resize(block, (ww, hh), interpolation=cv2.INTER_AREA), k)


def _factor(text_height: float, target: float) -> int:
    """The whole shrink factor that brings ``text_height`` (input px) nearest to ``target``
    (on a log scale), never enlarging."""
    if text_height <= target:
        return 1
    k = int(text_height // target)
    return (
        k
        if math.log(text_height / k / target) <= math.log(target * (k + 1) / text_height)
        else k + 1
    )


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


def analyze_page(
    page: np.ndarray, config: LayoutConfig | None = None, should_stop: StopCheck | None = None
) -> PageLayout:
    """Find the text lines of a page, in reading order, with upright crops for the recognizer.

    page: uint8 grey ``[H, W]`` (colour conversion and EXIF orientation are done before).
    A page without text (blank, or too small) gives no lines; raises ``ValueError`` only for
    an array that is not a grey image. ``should_stop`` is asked between stages (each a
    fraction of a second even on a page of thousands of marks); once it says True,
    :class:`AnalysisStopped` is raised.
    """
    cfg = config or LayoutConfig()

    def checkpoint() -> None:
        if should_stop is not None and should_stop():
            raise AnalysisStopped("page analysis stopped: the page is no longer wanted")

    page = _as_grey(page)
    h_in, w_in = page.shape
    if min(h_in, w_in) < MIN_SIDE:
        return PageLayout([], 0.0, False, 0)

    probe = _shrink(page, math.ceil(max(h_in, w_in) / cfg.probe_side_px))
    inverted, rough = detect_polarity(probe.image, cfg)
    th_probe = estimate_text_height(components(rough), rough.shape)
    if th_probe <= 0:
        return PageLayout([], 0.0, inverted, 0)
    checkpoint()

    # Analyse where the text is about `target` px tall; if the text height measured there is
    # far off (the probe saw broken or tiny print), once more at the corrected factor.
    target = cfg.analysis_text_height_px
    th_full = th_probe * probe.k
    for attempt in range(2):
        k = _factor(th_full, target)
        shrunk = probe if k == probe.k else _shrink(page, k)
        gray = cv2.bitwise_not(shrunk.image) if inverted else shrunk.image
        ink, dark = binarize(gray, th_full / k, cfg)
        checkpoint()
        stats = components(ink)
        th = estimate_text_height(stats, ink.shape)
        if th <= 0:
            return PageLayout([], 0.0, inverted, 0)
        if attempt or _factor(th * k, target) == k:
            break
        th_full = th * k
    scale = 1.0 / k
    checkpoint()

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
        size = (math.ceil(deskew.size[0] * scale), math.ceil(deskew.size[1] * scale))
        m = deskew.scaled(scale, scale)
        if dark.any():
            dark = cv2.warpAffine(dark, m, size, flags=cv2.INTER_NEAREST)
        else:
            dark = np.zeros((size[1], size[0]), np.uint8)
        if abs(skew) <= BOX_TURN_DEG:
            glyphs = _turn_boxes(glyphs, m, size)
        else:
            ink = cv2.warpAffine(ink, m, size, flags=cv2.INTER_NEAREST)
            glyphs = classify(ink, dark, components(ink), th, cfg)
    checkpoint()

    pieces = find_pieces(glyphs, th, dark, cfg)
    checkpoint()
    # Pictures and dark areas take part in the reading order as blocks of a column (a picture
    # with its caption beside a column of text), then drop out of the rows.
    n = len(pieces)
    blocks = np.vstack([pieces.boxes, glyphs.pictures, glyphs.dark_areas])
    rows, columns = reading_order(blocks, th, cfg)
    rows = [kept for kept in ([i for i in row if i < n] for row in rows) if kept]
    boxes, row_of = join_rows(pieces.boxes, rows, th, cfg)
    checkpoint()
    lo, hi = grey_range(probe.image)
    crops = cut_lines(
        page,
        boxes,
        row_of,
        (scale, scale),
        deskew,
        inverted=inverted,
        paper=lo if inverted else hi,
        text_height=th,
        config=cfg,
    )
    return PageLayout(crops, skew, inverted, columns if crops else 0, th * k)


def _turn_boxes(g: Glyphs, m: np.ndarray, size: tuple[int, int]) -> Glyphs:
    """Glyph boxes moved to the upright canvas by the 2×3 affine ``m``: each box keeps its
    size around its turned centre (for a small skew the turned glyph fits in it), picture and
    dark-area boxes become the bounding boxes of their turned corners."""
    w, h = size

    def centred(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray):
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        nx = m[0, 0] * cx + m[0, 1] * cy + m[0, 2]
        ny = m[1, 0] * cx + m[1, 1] * cy + m[1, 2]
        hw, hh = (x1 - x0) / 2.0, (y1 - y0) / 2.0
        return (
            np.clip(np.round(nx - hw), 0, w - 1).astype(np.int64),
            np.clip(np.round(ny - hh), 0, h - 1).astype(np.int64),
            np.clip(np.round(nx + hw), 1, w).astype(np.int64),
            np.clip(np.round(ny + hh), 1, h).astype(np.int64),
        )

    def corners(boxes: np.ndarray) -> np.ndarray:
        if len(boxes) == 0:
            return boxes
        xs = boxes[:, [0, 2, 2, 0]].astype(np.float64)
        ys = boxes[:, [1, 1, 3, 3]].astype(np.float64)
        nx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
        ny = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
        return np.stack([nx.min(1), ny.min(1), nx.max(1), ny.max(1)], 1).round().astype(np.int64)

    x0, y0, x1, y1 = centred(g.x0, g.y0, g.x1, g.y1)
    return Glyphs(
        x0, y0, x1, y1, g.seed, g.large, g.mark, corners(g.pictures), corners(g.dark_areas)
    )
