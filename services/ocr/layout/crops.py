"""Line crops for the recognizer, cut from the full-resolution input page (turned upright when
the page was skewed), and the lines' boxes in input coordinates."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .config import LayoutConfig
from .deskew import Deskew
from .types import LineCrop


def _margins(
    boxes: np.ndarray, text_height: float, config: LayoutConfig
) -> tuple[np.ndarray, np.ndarray, float]:
    """Margins above and below each line (px): ``margin_y`` of its height, but at most half
    the gap to the nearest line above or below it, so no crop takes in its neighbour's ink."""
    n = len(boxes)
    want = config.margin_y * (boxes[:, 3] - boxes[:, 1]).astype(np.float64)
    x_overlap = (
        np.minimum(boxes[:, None, 2], boxes[None, :, 2])
        - np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    ) > 0
    np.fill_diagonal(x_overlap, False)
    # gap_above[i, j] = y0_i - y1_j for j above i (>= 0); lines that overlap vertically: no limit.
    gap = boxes[:, None, 1] - boxes[None, :, 3]
    above = np.where(x_overlap & (gap >= 0), gap, np.iinfo(np.int64).max).min(axis=1) if n else want
    gap = boxes[None, :, 1] - boxes[:, None, 3]
    below = np.where(x_overlap & (gap >= 0), gap, np.iinfo(np.int64).max).min(axis=1) if n else want
    top = np.minimum(want, above / 2.0)
    bottom = np.minimum(want, below / 2.0)
    return top, bottom, config.margin_x * text_height


def cut_lines(
    page: np.ndarray,
    boxes: np.ndarray,
    rows: np.ndarray,
    scale: tuple[float, float],
    deskew: Deskew,
    *,
    inverted: bool,
    paper: int,
    text_height: float,
    config: LayoutConfig,
) -> list[LineCrop]:
    """One :class:`LineCrop` per box.

    page: the input page (uint8 ``[H, W]``). boxes: ``[N, 4]`` line boxes in the upright
    analysis image (px). rows: the text row of each line. scale: (sx, sy) analysis px per
    input px. deskew: the rotation from the input page to the upright canvas (input px).
    inverted: the page is light on dark (crops are inverted so they read dark on light).
    paper: grey level of the paper in ``page``, to fill what lies beyond the page's edges.
    text_height: in analysis px.
    """
    if len(boxes) == 0:
        return []
    sx, sy = scale
    cw, ch = deskew.size
    h_in, w_in = page.shape
    top, bottom, mx = _margins(boxes, text_height, config)
    out: list[LineCrop] = []
    for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        # Crop rectangle on the upright full-resolution canvas.
        cx0 = max(0, math.floor((x0 - mx) / sx))
        cx1 = min(cw, math.ceil((x1 + mx) / sx))
        cy0 = max(0, math.floor((y0 - top[i]) / sy))
        cy1 = min(ch, math.ceil((y1 + bottom[i]) / sy))
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        if deskew.rotates:
            m = deskew.matrix[:2].copy()
            m[0, 2] -= cx0
            m[1, 2] -= cy0
            image = cv2.warpAffine(
                page,
                m,
                (cx1 - cx0, cy1 - cy0),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=paper,
            )
        else:
            image = page[cy0:cy1, cx0:cx1].copy()
        if inverted:
            image = cv2.bitwise_not(image)
        # The tight line rectangle, back on the input page.
        xs = np.array([x0, x1, x1, x0], np.float64) / sx
        ys = np.array([y0, y0, y1, y1], np.float64) / sy
        px, py = deskew.to_input(xs, ys)
        box = (
            max(0, math.floor(float(px.min()))),
            max(0, math.floor(float(py.min()))),
            min(w_in, math.ceil(float(px.max()))),
            min(h_in, math.ceil(float(py.max()))),
        )
        out.append(LineCrop(box, image, int(rows[i])))
    return out
