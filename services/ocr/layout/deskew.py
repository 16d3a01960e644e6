"""Skew estimation (projection profiles of glyph centres) and the deskew rotation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .config import LayoutConfig

MIN_GLYPHS = 6  # fewer glyph centres than this say nothing reliable about the skew
MAX_GLYPHS = 2500  # more are sampled down to this many


def _profile_scores(
    x: np.ndarray, y: np.ndarray, angles_deg: np.ndarray, bin_px: float
) -> np.ndarray:
    """Sum of squared bin counts of the glyph centres projected across each candidate angle."""
    a = np.deg2rad(angles_deg)[:, None]
    # The y a centre would have after turning the page clockwise by the angle.
    yy = x[None, :] * np.sin(a) + y[None, :] * np.cos(a)
    bins = np.floor((yy - yy.min()) / bin_px).astype(np.int64)
    nb = int(bins.max()) + 1
    flat = bins + np.arange(len(angles_deg))[:, None] * nb
    counts = np.bincount(flat.ravel(), minlength=nb * len(angles_deg)).reshape(len(angles_deg), nb)
    return (counts.astype(np.float64) ** 2).sum(axis=1)


def estimate_skew(x: np.ndarray, y: np.ndarray, text_height: float, config: LayoutConfig) -> float:
    """Skew in degrees (positive: text turned counter-clockwise as displayed) from glyph centres
    ``x``, ``y`` (px): the angle at which the centres line up in the sharpest rows.

    A coarse search over ±``max_skew_deg``, then finer ones around the best angle; 0.0 when
    there are too few glyphs. Ties go to the smaller angle.
    """
    if len(x) < MIN_GLYPHS:
        return 0.0
    if len(x) > MAX_GLYPHS:  # an even sample: enough for the profiles, and cheaper
        pick = np.linspace(0, len(x) - 1, MAX_GLYPHS).astype(np.int64)
        x, y = x[pick], y[pick]
    x = x.astype(np.float64) - float(np.mean(x))
    y = y.astype(np.float64) - float(np.mean(y))
    limit = config.max_skew_deg
    best = 0.0
    # Coarse to fine: 1° steps over the range, then the step, then a tenth of it.
    for step, span, bin_th in (
        (1.0, limit, 3.0),
        (config.skew_step_deg, 1.0, 3.0),
        (config.skew_step_deg / 10, config.skew_step_deg, 5.0),
    ):
        n = max(1, round(span / step))
        angles = best + np.arange(-n, n + 1) * step
        angles = angles[np.abs(angles) <= limit + 1e-9]
        scores = _profile_scores(x, y, angles, max(1.0, text_height / bin_th))
        scores -= 1e-6 * scores.max() * np.abs(angles)  # prefer the smaller of equal angles
        best = float(angles[int(np.argmax(scores))])
    return best


@dataclass(frozen=True)
class Deskew:
    """The rotation that turns the input page upright, as a 3×3 affine on input pixels
    (``matrix``), onto a canvas of ``size`` = (width, height) px that holds the whole page."""

    angle_deg: float
    matrix: np.ndarray
    size: tuple[int, int]

    @classmethod
    def identity(cls, width: int, height: int) -> Deskew:
        return cls(0.0, np.eye(3), (width, height))

    @classmethod
    def for_page(cls, width: int, height: int, skew_deg: float) -> Deskew:
        """Undo ``skew_deg`` (see :func:`estimate_skew`) for a ``width`` × ``height`` page."""
        if skew_deg == 0.0:
            return cls.identity(width, height)
        rad = math.radians(skew_deg)
        cos, sin = abs(math.cos(rad)), abs(math.sin(rad))
        out_w = math.ceil(width * cos + height * sin)
        out_h = math.ceil(width * sin + height * cos)
        m = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), -skew_deg, 1.0)
        m[0, 2] += out_w / 2.0 - width / 2.0
        m[1, 2] += out_h / 2.0 - height / 2.0
        return cls(skew_deg, np.vstack([m, [0.0, 0.0, 1.0]]), (out_w, out_h))

    @property
    def rotates(self) -> bool:
        return self.angle_deg != 0.0

    def scaled(self, sx: float, sy: float) -> np.ndarray:
        """The same rotation for the page resized by (sx, sy): a 2×3 affine."""
        s = np.diag([sx, sy, 1.0])
        return (s @ self.matrix @ np.linalg.inv(s))[:2]

    def to_input(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Upright-canvas points (px) → input page points (px)."""
        inv = np.linalg.inv(self.matrix)
        return inv[0, 0] * x + inv[0, 1] * y + inv[0, 2], inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]
