"""Connected components of the ink, sorted into glyphs, marks and what is not text."""

from __future__ import annotations

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
    """``cv2.connectedComponentsWithStats`` stats of an ink mask (row 0 is the background)."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8, ltype=cv2.CV_32S)
    return stats


def classify(
    ink: np.ndarray, dark: np.ndarray, stats: np.ndarray, text_height: float, config: LayoutConfig
) -> Glyphs:
    """Sort components (``stats`` of the mask ``ink``, as from :func:`components`) by size
    relative to the text height.

    A graphic (a component too big for a glyph) whose box is densely inked or dark (``dark``:
    areas that are no paper) is a picture, drawing or photo: whatever lies inside its box is
    not text. A sparse one is a frame or rule box, which may well hold text.
    """
    s = stats[1:]
    x0 = s[:, cv2.CC_STAT_LEFT].astype(np.int64)
    y0 = s[:, cv2.CC_STAT_TOP].astype(np.int64)
    w = s[:, cv2.CC_STAT_WIDTH].astype(np.int64)
    h = s[:, cv2.CC_STAT_HEIGHT].astype(np.int64)
    th = text_height
    graphic = (h > config.max_glyph_height * th) | (w > config.max_glyph_width * th)
    longest, thickness = np.maximum(w, h), np.minimum(w, h)
    rule = (longest > 4 * th) & (longest > config.rule_ratio * thickness)
    small = (w < config.min_glyph * th) & (h < config.min_glyph * th)
    seed = ~graphic & ~rule & ~small
    large = seed & (h > config.large_glyph * th)
    pictures = []
    for i in np.flatnonzero(graphic):
        box = np.s_[y0[i] : y0[i] + h[i], x0[i] : x0[i] + w[i]]
        if np.count_nonzero(ink[box] | dark[box]) >= config.picture_ink * h[i] * w[i]:
            pictures.append((x0[i], y0[i], x0[i] + w[i], y0[i] + h[i]))
    pic = np.array(pictures, np.int64).reshape(-1, 4)
    return Glyphs(x0, y0, x0 + w, y0 + h, seed, large, small, pic, dark_areas(dark, th))


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
