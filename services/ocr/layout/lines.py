"""Text lines from glyph boxes, in two steps.

1. Pieces: glyphs whose middle bands touch once widened by half of ``piece_gap`` are one piece
   (a word, or words closer than ``piece_gap``). Only a glyph's middle band (``core_height`` ×
   th) takes part, so ascenders and descenders touching the next line, or a blot joining two
   lines, cannot merge lines: lines that touch are split by construction. Big type is grouped
   on its own scale; marks (dots, commas, accents) join the piece they sit on.
2. Lines: once the reading order has put pieces into rows, the pieces of a row closer than
   ``split_gap`` are joined; a wider gap starts a new line of the same row.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from .components import Glyphs
from .config import LayoutConfig

#: A big glyph's own "text height" is its height over this (capitals and ascenders reach about
#: 1.3-1.4 x-heights).
LARGE_TO_TH = 1.3
#: A line piece's box (ascenders to descenders) is about this many text heights tall.
BOX_TO_TH = 1.6
#: A piece whose neighbourhood is more than this fraction dark area is not text.
DARK_NEIGHBOURHOOD = 0.15


@dataclass(frozen=True)
class Pieces:
    """Boxes (px, ``[N, 4]`` x0, y0, x1, y1, exclusive ends) and glyph counts of line pieces."""

    boxes: np.ndarray
    glyphs: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> Pieces:
        return cls(np.zeros((0, 4), np.int64), np.zeros(0, np.int64))


def _label_bands(
    shape: tuple[int, int],
    x0: np.ndarray,
    x1: np.ndarray,
    cy: np.ndarray,
    half: float,
    reach: float,
) -> np.ndarray:
    """Labels (int32 image) of the union of the bands ``[x0 - reach, x1 + reach) × [cy ± half]``.

    Each glyph draws one row segment ``[x0, x1)`` at ``cy`` (a running sum over the flattened
    image: no per-glyph Python), then one dilation grows every segment into its band.
    """
    h, w = shape
    rows = np.clip(np.round(cy).astype(np.int64), 0, h - 1) * w
    edges = np.zeros(h * w + 1, np.int16)
    np.add.at(edges, rows + np.clip(x0, 0, w), 1)
    np.add.at(edges, rows + np.clip(x1, 0, w), -1)
    segments = (np.cumsum(edges[:-1], dtype=np.int16) > 0).view(np.uint8).reshape(h, w)
    kx, ky = 2 * round(reach) + 1, 2 * round(half) + 1
    mask = cv2.dilate(segments, cv2.getStructuringElement(cv2.MORPH_RECT, (kx, ky)))
    _, labels = cv2.connectedComponents(mask, connectivity=4, ltype=cv2.CV_32S)
    return labels


def _label_rects(
    shape: tuple[int, int],
    x0: np.ndarray,
    x1: np.ndarray,
    cy: np.ndarray,
    half: np.ndarray,
    reach: np.ndarray,
) -> np.ndarray:
    """Like :func:`_label_bands` with a band size per glyph (for the few big glyphs)."""
    mask = np.zeros(shape, np.uint8)
    for a, b, c, hh, r in zip(
        x0.tolist(), x1.tolist(), cy.tolist(), half.tolist(), reach.tolist(), strict=True
    ):
        cv2.rectangle(mask, (round(a - r), round(c - hh)), (round(b - 1 + r), round(c + hh)), 1, -1)
    _, labels = cv2.connectedComponents(mask, connectivity=4, ltype=cv2.CV_32S)
    return labels


def _at(labels: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = labels.shape
    return labels[
        np.clip(np.round(y).astype(np.int64), 0, h - 1), np.clip(x.astype(np.int64), 0, w - 1)
    ]


def find_pieces(g: Glyphs, text_height: float, dark: np.ndarray, config: LayoutConfig) -> Pieces:
    """Group glyphs into line pieces (boxes in the glyphs' px). ``dark``: the dark-area mask
    (uint8 0/1) of the upright image the glyphs come from; pieces in or at the edge of dark
    areas (specks in a photo, show-through beside a scan border) are dropped."""
    shape = dark.shape
    th = text_height
    normal = np.flatnonzero(g.seed & ~g.large)
    large = np.flatnonzero(g.large)
    # Seeds: (x0, y0, x1, y1, height, piece label, big type?) per row.
    parts: list[np.ndarray] = []
    next_id = 0
    labels = None
    if normal.size:
        cy = (g.y0[normal] + g.y1[normal]) / 2.0
        labels = _label_bands(
            shape,
            g.x0[normal],
            g.x1[normal],
            cy,
            config.core_height * th / 2,
            config.piece_gap * th / 2,
        )
        lab = _at(labels, (g.x0[normal] + g.x1[normal] - 1) // 2, cy)
        parts.append(
            np.stack(
                [
                    g.x0[normal],
                    g.y0[normal],
                    g.x1[normal],
                    g.y1[normal],
                    g.height[normal],
                    lab,
                    np.zeros_like(lab),
                ],
                1,
            )
        )
        next_id = int(lab.max()) + 1
        split, large = _split_bridges(g, large, labels, th, config)
        parts.append(split)
    if large.size:
        own = g.height[large] / LARGE_TO_TH
        cy = (g.y0[large] + g.y1[large]) / 2.0
        big = _label_rects(
            shape,
            g.x0[large],
            g.x1[large],
            cy,
            config.core_height * own / 2,
            config.piece_gap * own / 2,
        )
        lab = _at(big, (g.x0[large] + g.x1[large] - 1) // 2, cy) + next_id
        parts.append(
            np.stack(
                [
                    g.x0[large],
                    g.y0[large],
                    g.x1[large],
                    g.y1[large],
                    g.height[large],
                    lab,
                    np.ones_like(lab),
                ],
                1,
            )
        )
    seeds = np.concatenate(parts) if parts else np.zeros((0, 7), np.int64)
    if len(seeds) == 0:
        return Pieces.empty()
    ids, inv = np.unique(seeds[:, 5], return_inverse=True)
    n = len(ids)
    boxes = np.empty((n, 4), np.int64)
    big_int = np.iinfo(np.int64).max
    boxes[:, :2] = big_int
    boxes[:, 2:] = -big_int
    np.minimum.at(boxes[:, 0], inv, seeds[:, 0])
    np.minimum.at(boxes[:, 1], inv, seeds[:, 1])
    np.maximum.at(boxes[:, 2], inv, seeds[:, 2])
    np.maximum.at(boxes[:, 3], inv, seeds[:, 3])
    count = np.bincount(inv, minlength=n)
    tallest = np.zeros(n, np.int64)
    np.maximum.at(tallest, inv, seeds[:, 4])
    is_large = np.zeros(n, bool)
    is_large[inv[seeds[:, 6] > 0]] = True
    if labels is not None:
        _attach_marks(g, labels, ids, boxes, th)
    keep = _plausible(boxes, count, is_large, th) & ~_in_pictures(boxes, g.pictures)
    keep &= ~_by_dark_areas(boxes, dark, 0.5 * th, edge_is_dark=False)
    boxes, count, tallest = _absorb_fragments(boxes[keep], count[keep], tallest[keep], th, config)
    # A lone glyph must look like type: not taller than capitals and brackets (a blot, a
    # stroke of a drawing, show-through).
    weak = (count == 1) & (tallest > 1.8 * th)
    # Nor are glyphs all lower than half a text height: a row of dashes, dots or rule
    # fragments, a smear.
    weak |= tallest < 0.55 * th
    # Nor are a few glyphs close to dark areas or the image's edge (show-through and dirt
    # along scan borders).
    few = np.flatnonzero(count <= 3)
    weak[few] |= _by_dark_areas(boxes[few], dark, 2.0 * th, edge_is_dark=True)
    return Pieces(boxes[~weak], count[~weak])


def _split_bridges(
    g: Glyphs, large: np.ndarray, labels: np.ndarray, th: float, config: LayoutConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Cut the big glyphs that join lines (a descender fused with the ascender below it) at
    the middle between those lines' bands, each part joining its line's piece.

    A big glyph joins lines when the bands of normal glyphs beside it (within half
    ``piece_gap``) lie in two or more rows (centres more than 0.8 th apart). Returns the parts
    as seed rows (see :func:`find_pieces`) and the big glyphs that are left.
    """
    w = labels.shape[1]
    reach = round(config.piece_gap * th / 2)
    out: list[list[int]] = []
    left: list[int] = []
    for i in large.tolist():
        y0, y1 = int(g.y0[i]), int(g.y1[i])
        xa, xb = max(0, int(g.x0[i]) - reach), min(w, int(g.x1[i]) + reach)
        win = labels[y0:y1, xa:xb]
        labs, rows = [], []
        for lab in np.unique(win):
            if lab:
                labs.append(int(lab))
                rows.append(float(np.mean(np.nonzero(win == lab)[0])) + y0)
        order = np.argsort(rows)
        bands = [(rows[j], labs[j]) for j in order]
        distinct = [bands[0]] if bands else []
        for c, lab in bands[1:]:
            if c - distinct[-1][0] > 0.8 * th:
                distinct.append((c, lab))
        if len(distinct) < 2:
            left.append(i)
            continue
        cuts = [y0] + [round((a[0] + b[0]) / 2) for a, b in itertools.pairwise(distinct)] + [y1]
        for (top, bottom), (_, lab) in zip(itertools.pairwise(cuts), distinct, strict=True):
            if bottom > top:
                out.append([int(g.x0[i]), top, int(g.x1[i]), bottom, bottom - top, lab, 0])
    return np.array(out, np.int64).reshape(-1, 7), np.array(left, np.int64)


def _attach_marks(
    g: Glyphs, labels: np.ndarray, ids: np.ndarray, boxes: np.ndarray, th: float
) -> None:
    """Widen piece boxes (in place) by the marks sitting on them: a mark whose centre, or a
    point 0.6 th above or below it, falls in a piece's band. Marks reach at most 0.5 th above
    or below the glyphs, so a speck near a line cannot stretch it much."""
    marks = np.flatnonzero(g.mark)
    if marks.size == 0:
        return
    cx = (g.x0[marks] + g.x1[marks] - 1) // 2
    cy = (g.y0[marks] + g.y1[marks]) / 2.0
    lab = np.zeros(marks.size, np.int64)
    for dy in (0.0, -0.6 * th, 0.6 * th):
        lab = np.where(lab > 0, lab, _at(labels, cx, cy + dy))
    pos = np.minimum(np.searchsorted(ids, lab), len(ids) - 1)
    ok = (lab > 0) & (ids[pos] == lab)
    if not np.any(ok):
        return
    m, piece = marks[ok], pos[ok]
    reach = int(np.ceil(0.5 * th))
    np.minimum.at(boxes[:, 0], piece, g.x0[m])
    np.maximum.at(boxes[:, 2], piece, g.x1[m])
    np.minimum.at(boxes[:, 1], piece, np.maximum(g.y0[m], boxes[piece, 1] - reach))
    np.maximum.at(boxes[:, 3], piece, np.minimum(g.y1[m], boxes[piece, 3] + reach))


def _plausible(boxes: np.ndarray, count: np.ndarray, is_large: np.ndarray, th: float) -> np.ndarray:
    """Which pieces to keep: not a lone small blot, not a lone big glyph lying across two
    pieces of different lines (a blot or touching letters joining lines; the neighbours' crops
    hold its ink)."""
    bw = boxes[:, 2] - boxes[:, 0]
    bh = boxes[:, 3] - boxes[:, 1]
    keep = ~((count == 1) & (np.maximum(bw, bh) < 0.7 * th))
    for i in np.flatnonzero((count == 1) & is_large & keep):
        ix = np.minimum(boxes[:, 2], boxes[i, 2]) - np.maximum(boxes[:, 0], boxes[i, 0])
        iy = np.minimum(boxes[:, 3], boxes[i, 3]) - np.maximum(boxes[:, 1], boxes[i, 1])
        crossed = np.flatnonzero((ix > 0) & (iy > 0) & keep & ~is_large)
        if len(crossed) >= 2 and np.ptp(boxes[crossed, 1] + boxes[crossed, 3]) > 1.2 * th:
            keep[i] = False
    return keep


def _in_pictures(boxes: np.ndarray, pictures: np.ndarray) -> np.ndarray:
    """Pieces whose centre lies inside a picture's box."""
    if len(pictures) == 0:
        return np.zeros(len(boxes), bool)
    cx = (boxes[:, 0] + boxes[:, 2])[:, None] / 2.0
    cy = (boxes[:, 1] + boxes[:, 3])[:, None] / 2.0
    p = pictures[None, :, :]
    inside = (cx >= p[..., 0]) & (cx < p[..., 2]) & (cy >= p[..., 1]) & (cy < p[..., 3])
    return np.asarray(inside.any(axis=1))


def _by_dark_areas(
    boxes: np.ndarray, dark: np.ndarray, reach: float, edge_is_dark: bool
) -> np.ndarray:
    """Pieces whose box, widened by ``reach`` px, is more than ``DARK_NEIGHBOURHOOD`` dark
    area (and beyond the image's edge, when ``edge_is_dark``)."""
    if len(boxes) == 0 or not (edge_is_dark or dark.any()):
        return np.zeros(len(boxes), bool)
    h, w = dark.shape
    summed = cv2.integral(dark)
    r = round(reach)
    x0, y0, x1, y1 = boxes[:, 0] - r, boxes[:, 1] - r, boxes[:, 2] + r, boxes[:, 3] + r
    area = (x1 - x0) * (y1 - y0)
    cx0, cx1 = np.clip(x0, 0, w), np.clip(x1, 0, w)
    cy0, cy1 = np.clip(y0, 0, h), np.clip(y1, 0, h)
    inside = summed[cy1, cx1] - summed[cy0, cx1] - summed[cy1, cx0] + summed[cy0, cx0]
    if edge_is_dark:
        inside = inside + area - (cx1 - cx0) * (cy1 - cy0)
    return np.asarray(inside > DARK_NEIGHBOURHOOD * area)


def _absorb_fragments(
    boxes: np.ndarray,
    count: np.ndarray,
    tallest: np.ndarray,
    th: float,
    config: LayoutConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge fragments into the piece they belong to; a fragment near no piece stays as it is.

    A fragment is a piece of at most two glyphs lower than 1.5 th: quotes or a stop after a
    word, a broken letter, the detached bowl of a "g". One beside a piece, overlapping it by
    half its own height and within ``piece_gap``, joins it (it is in that line either way).
    One above or below a piece, within 0.25 th, joins it only if it is in no row of its own:
    no piece within ``split_gap`` to its side has its vertical centre near the fragment's (a
    short word such as "of" has neighbours in its row).
    """
    h = boxes[:, 3] - boxes[:, 1]
    small = (count <= 2) & (h < 1.5 * th)
    if not np.any(small) or np.all(small):
        return boxes, count, tallest
    boxes, count, tallest = boxes.copy(), count.copy(), tallest.copy()
    big = np.flatnonzero(~small)
    reach, side, row_reach = 0.25 * th, config.piece_gap * th, config.split_gap * th
    cy = (boxes[:, 1] + boxes[:, 3]) / 2.0
    alive = np.ones(len(boxes), bool)
    for i in np.flatnonzero(small):
        bb = boxes[big]
        dx = np.maximum(bb[:, 0] - boxes[i, 2], boxes[i, 0] - bb[:, 2])
        oy = np.minimum(bb[:, 3], boxes[i, 3]) - np.maximum(bb[:, 1], boxes[i, 1])
        beside = np.where((oy >= 0.5 * h[i]) & (dx <= side), dx, np.inf)
        k = int(np.argmin(beside))
        if not np.isfinite(beside[k]):
            in_row = (dx <= row_reach) & (np.abs(cy[big] - cy[i]) <= 0.35 * h[big])
            iy = np.minimum(bb[:, 3], boxes[i, 3] + reach) - np.maximum(
                bb[:, 1], boxes[i, 1] - reach
            )
            area = np.where((dx < 0) & (iy > 0), -dx * iy, 0)
            k = int(np.argmax(area))
            if np.any(in_row) or area[k] <= 0:
                continue
        j = big[k]
        boxes[j, :2] = np.minimum(boxes[j, :2], boxes[i, :2])
        boxes[j, 2:] = np.maximum(boxes[j, 2:], boxes[i, 2:])
        count[j] += count[i]
        tallest[j] = max(tallest[j], tallest[i])
        alive[i] = False
    return boxes[alive], count[alive], tallest[alive]


def join_rows(
    boxes: np.ndarray, rows: list[list[int]], text_height: float, config: LayoutConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Line boxes (``[M, 4]``, in reading order) from pieces ordered into rows (each row's
    pieces left to right), and the row of each line (``[M]``, 0, 1, ...).

    A row is cut into lines at gaps wider than ``split_gap`` text heights. The text height is
    the page's, or when both neighbours are big type the smaller one's (box height over
    ``BOX_TO_TH``): big type has wide spaces.
    """
    out: list[list[int]] = []
    row_of: list[int] = []
    for r, row in enumerate(rows):
        b = boxes[row].tolist()
        cur = b[0]
        for nxt in b[1:]:
            local = max(text_height, min(nxt[3] - nxt[1], cur[3] - cur[1]) / BOX_TO_TH)
            if nxt[0] - cur[2] > config.split_gap * local:
                out.append(cur)
                row_of.append(r)
                cur = nxt
            else:
                cur = [
                    min(cur[0], nxt[0]),
                    min(cur[1], nxt[1]),
                    max(cur[2], nxt[2]),
                    max(cur[3], nxt[3]),
                ]
        out.append(cur)
        row_of.append(r)
    return np.array(out, np.int64).reshape(-1, 4), np.array(row_of, np.int64)
