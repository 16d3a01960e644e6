"""Connected components of the ink, sorted into glyphs, marks and what is not text."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from .config import LayoutConfig


@dataclass(frozen=True)
class Glyphs:
    """Boxes of ink components (px, ``x1``/``y1`` exclusive) by role.

    seeds: glyph-sized components that make lines (``large``: the big-type ones among them).
    marks: dots, commas, accents, specks: they join a line they sit on, never start one.
    Components that are graphics or rules are left out.
    """

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    seed: np.ndarray  # bool
    large: np.ndarray  # bool, subset of seed
    mark: np.ndarray  # bool
    pictures: np.ndarray  # [P, 4] boxes of pictures: no text is looked for inside them
    dark_areas: np.ndarray  # [D, 4] boxes of large dark areas (photos, black borders)

    def __len__(self) -> int:
        return len(self.x0)

    @property
    def height(self) -> np.ndarray:
        return self.y1 - self.y0

    @property
    def width(self) -> np.ndarray:
        return self.x1 - self.x0


def components(ink: np.ndarray) -> np.ndarray:
    """``cv2.connectedComponentsWithStats`` stats of an ink mask (row 0 is the background).

    Wu's algorithm: about twice as fast as OpenCV's default here on one thread (text pages
    have thousands of components)."""
    _, _, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(ink, 8, cv2.CV_32S, cv2.CCL_WU)
    return stats


def classify(
    ink: np.ndarray, dark: np.ndarray, stats: np.ndarray, text_height: float, config: LayoutConfig
) -> Glyphs:
    """Sort components (``stats`` of the mask ``ink``, as from :func:`components`) by size
    relative to the text height.

    A graphic (a component too big for a glyph) that fills its box densely (``picture_ink``)
    is a picture, drawing or photo: whatever lies inside its box is not text. A sparse one is
    a frame, a rule box or the edge of a scan, which may well hold text. ``dark`` (areas that
    are no paper) gives the dark areas' boxes.
    """
    s = stats[1:]
    x0 = s[:, cv2.CC_STAT_LEFT].astype(np.int64)
    y0 = s[:, cv2.CC_STAT_TOP].astype(np.int64)
    w = s[:, cv2.CC_STAT_WIDTH].astype(np.int64)
    h = s[:, cv2.CC_STAT_HEIGHT].astype(np.int64)
    area = s[:, cv2.CC_STAT_AREA].astype(np.int64)
    th = text_height
    x0, y0, w, h, area = _split_touching_lines(ink, x0, y0, w, h, area, th, config)
    graphic = (h > config.max_glyph_height * th) | (w > config.max_glyph_width * th)
    longest, thickness = np.maximum(w, h), np.minimum(w, h)
    rule = (longest > 4 * th) & (longest > config.rule_ratio * thickness)
    # Upright bars need less length: a barcode's bars are about two text heights.
    rule |= (h > 1.6 * th) & (h > config.rule_ratio * w)
    # Lower than min_glyph: a dot, comma, dash or speck (even a long dash: it must not join
    # two lines' bands where it lies between them).
    small = h < config.min_glyph * th
    seed = ~graphic & ~rule & ~small
    large = seed & (h > config.large_glyph * th)
    picture = graphic & (area >= config.picture_ink * w * h)
    pic = np.stack([x0, y0, x0 + w, y0 + h], 1)[picture].reshape(-1, 4)
    return Glyphs(x0, y0, x0 + w, y0 + h, seed, large, small, pic, dark_areas(dark, th))


#: A row of a tall component with less ink than this fraction of its typical row is a gap
#: between two lines of text that touch.
VALLEY = 0.12


def _split_touching_lines(
    ink: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    w: np.ndarray,
    h: np.ndarray,
    area: np.ndarray,
    th: float,
    config: LayoutConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut components that are lines of text touching each other (a descender on the
    ascender below, bold type at low resolution) at the nearly empty rows between them.

    Candidates are taller than ``large_glyph`` th but not graphics by height; a cut needs a
    run of rows inked at most ``VALLEY`` of the component's median row, with at least 0.6 th
    of ink above and below. Big type has no such valley across its whole width and stays
    whole. Returns the boxes (and ink areas) with each cut component replaced by its parts.
    """
    cand = np.flatnonzero((h > config.large_glyph * th) & (h <= config.max_glyph_height * th))
    if cand.size == 0:
        return x0, y0, w, h, area
    min_part = max(2, round(0.6 * th))
    drop: list[int] = []
    parts: list[tuple[int, int, int, int, int]] = []
    for i in cand.tolist():
        box = ink[y0[i] : y0[i] + h[i], x0[i] : x0[i] + w[i]]
        rows = np.count_nonzero(box, axis=1)
        typical = float(np.median(rows[rows > 0]))
        low = np.concatenate([[0], (rows <= VALLEY * typical).view(np.int8), [0]])
        edges = np.flatnonzero(np.diff(low))
        cuts = [0]
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            mid = (int(a) + int(b)) // 2
            if mid - cuts[-1] >= min_part and len(rows) - mid >= min_part:
                cuts.append(mid)
        if len(cuts) == 1:
            continue
        cuts.append(len(rows))
        drop.append(i)
        for top, bottom in itertools.pairwise(cuts):
            inked = np.flatnonzero(np.count_nonzero(box[top:bottom], axis=0))
            rows_in = np.flatnonzero(rows[top:bottom])
            if inked.size and rows_in.size:
                parts.append(
                    (
                        int(x0[i] + inked[0]),
                        int(y0[i] + top + rows_in[0]),
                        int(inked[-1] - inked[0] + 1),
                        int(rows_in[-1] - rows_in[0] + 1),
                        int(rows[top:bottom].sum()),
                    )
                )
    if not drop:
        return x0, y0, w, h, area
    keep = np.ones(len(x0), bool)
    keep[drop] = False
    new = np.array(parts, np.int64).reshape(-1, 5)
    return tuple(  # type: ignore[return-value]
        np.concatenate([old[keep], new[:, j]]) for j, old in enumerate((x0, y0, w, h, area))
    )


def dark_areas(dark: np.ndarray, text_height: float) -> np.ndarray:
    """Boxes ``[D, 4]`` of the dark areas (photos, black borders) at least 4 th each way and
    smaller than half the image (a dark frame around the whole page is no block of it)."""
    f = max(1, int(text_height // 2))
    small = np.ascontiguousarray(dark[::f, ::f])
    _n, _, stats, _ = cv2.connectedComponentsWithStats(small, connectivity=8, ltype=cv2.CV_32S)
    s = stats[1:].astype(np.int64) * f
    x, y, w, h = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    big = (w >= 4 * text_height) & (h >= 4 * text_height) & (w * h < 0.5 * dark.size)
    return np.stack([x, y, x + w, y + h], 1)[big].reshape(-1, 4)
