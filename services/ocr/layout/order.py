"""Reading order of line pieces: text columns left to right, each top to bottom, rows left to
right.

A block of pieces is cut into rows (top to bottom), then into runs of consecutive rows that
share a column gutter: a vertical strip at least ``min_gutter`` wide, inside the block, that no
piece of those rows covers, with column-like text on both sides (``min_column_lines`` rows
each, each side at least ``min_column_width`` wide). The rows of such a run are read column by
column (each column a block of its own, so three columns work too); a row that belongs to no
run (a title, an abstract, a running head over both columns) is read in its place. A
receipt's price column is too narrow to be a text column, so its rows read "label ... price".
"""

from __future__ import annotations

import numpy as np

from .config import LayoutConfig

#: Two pieces are in one row when they overlap vertically by this fraction of the lower one.
ROW_OVERLAP = 0.4


def reading_order(
    boxes: np.ndarray, text_height: float, config: LayoutConfig
) -> tuple[list[list[int]], int]:
    """Rows of piece indices in reading order (each row left to right) and the number of text
    columns (the most side by side anywhere; 1 for a page with text, 0 without).

    boxes: ``[N, 4]`` x0, y0, x1, y1 of the pieces on the upright page (px).
    """
    if len(boxes) == 0:
        return [], 0
    return _block(boxes, np.arange(len(boxes)), text_height, config)


def _block(
    boxes: np.ndarray, idx: np.ndarray, th: float, config: LayoutConfig
) -> tuple[list[list[int]], int]:
    rows = _rows(boxes, idx)
    if len(rows) < config.min_column_lines:
        return rows, 1
    b = boxes[idx]
    bx0, bx1 = int(b[:, 0].min()), int(b[:, 2].max())
    if bx1 - bx0 < (2 * config.min_column_width + config.min_gutter) * th:
        return rows, 1
    # free[r, c]: row r leaves cell c uncovered; cells of q px from bx0 (a piece covers every
    # cell it touches, so gutters are never overstated).
    q = max(1, int(th // 4))
    cells = -(-(bx1 - bx0) // q)
    free = np.ones((len(rows), cells), bool)
    for r, row in enumerate(rows):
        for i in row:
            free[r, (boxes[i, 0] - bx0) // q : -(-(boxes[i, 2] - bx0) // q)] = False
    grid = (bx0, q)
    out: list[list[int]] = []
    columns = 1
    start = 0
    while start < len(rows):
        found = _column_run(boxes, rows, free, start, grid, th, config)
        if found is None:
            out.append(rows[start])
            start += 1
            continue
        end, (g0, g1) = found
        run = np.array([i for row in rows[start:end] for i in row])
        centre = (boxes[run, 0] + boxes[run, 2]) / 2.0
        mid = (g0 + g1) / 2.0
        lo, lc = _block(boxes, run[centre < mid], th, config)
        ro, rc = _block(boxes, run[centre >= mid], th, config)
        out += lo + ro
        columns = max(columns, lc + rc)
        start = end
    return out, columns


def _longest_runs(m: np.ndarray) -> np.ndarray:
    """Length of the longest run of True in each row of a 2-D bool array."""
    idx = np.arange(m.shape[1])
    last_false = np.maximum.accumulate(np.where(m, -1, idx), axis=1)
    return np.asarray((idx - last_false).max(axis=1))


def _column_run(
    boxes: np.ndarray,
    rows: list[list[int]],
    free: np.ndarray,
    start: int,
    grid: tuple[int, int],
    th: float,
    config: LayoutConfig,
) -> tuple[int, tuple[int, int]] | None:
    """The longest run of rows from ``start`` that keeps a gap open, as ``(end, (x0, x1))``
    (rows ``start:end``, the gutter in page px), if a gap of it is a gutter between columns;
    else None. While the run grows any gap counts, one at the block's edge too (the rows so
    far may hold one column only); the gutter must be inside the block."""
    bx0, q = grid
    min_cells = max(1, round(config.min_gutter * th / q))
    common = np.logical_and.accumulate(free[start:], axis=0)
    shut = np.flatnonzero(_longest_runs(common) < min_cells)
    end = start + (int(shut[0]) if shut.size else len(common))
    if end == start:
        return None
    best: tuple[int, int] | None = None
    run = [i for row in rows[start:end] for i in row]
    b = boxes[run]
    for s, e in _gutters(common[end - start - 1], min_cells):
        g0, g1 = bx0 + s * q, bx0 + e * q
        if best is not None and g1 - g0 <= best[1] - best[0]:
            continue
        if _columns_side_by_side(b[b[:, 2] <= g0], b[b[:, 0] >= g1], th, config):
            best = (g0, g1)
    return (end, best) if best is not None else None


def _gutters(free: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """Runs ``(start, end)`` of ``free`` at least ``min_len`` long, touching neither end."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], free.view(np.int8), [0]])))
    n = len(free)
    return [
        (int(s), int(e))
        for s, e in zip(edges[::2], edges[1::2], strict=True)
        if e - s >= min_len and s > 0 and e < n
    ]


def _row_count(b: np.ndarray, th: float) -> int:
    """Rows of text among boxes ``b``: clusters of vertical centres at least 0.8 th apart."""
    cy = np.sort((b[:, 1] + b[:, 3]) / 2.0)
    return int(np.count_nonzero(np.diff(cy) > 0.8 * th)) + 1 if len(cy) else 0


def _columns_side_by_side(
    left: np.ndarray, right: np.ndarray, th: float, config: LayoutConfig
) -> bool:
    n = config.min_column_lines
    if len(left) < n or len(right) < n:
        return False
    min_w = config.min_column_width * th
    if np.ptp(left[:, [0, 2]]) < min_w or np.ptp(right[:, [0, 2]]) < min_w:
        return False
    if _row_count(left, th) < n or _row_count(right, th) < n:
        return False
    top = max(left[:, 1].min(), right[:, 1].min())
    bottom = min(left[:, 3].max(), right[:, 3].max())
    shorter = min(np.ptp(left[:, [1, 3]]), np.ptp(right[:, [1, 3]]))
    return bool(bottom - top >= 0.5 * shorter)


def _rows(boxes: np.ndarray, idx: np.ndarray) -> list[list[int]]:
    """Rows of a block, top to bottom, each left to right.

    Each piece is linked to the nearest piece to its right that overlaps it vertically by
    ``ROW_OVERLAP`` of the lower one (mutual best links only), so a row follows a slightly
    curved or skewed line; rows are ordered by their mean vertical centre.
    """
    n = len(idx)
    if n == 0:
        return []
    b = boxes[idx].astype(np.float64)
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    h = y1 - y0
    overlap = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
    lower = np.minimum(h[:, None], h[None, :])
    cy = (y0 + y1) / 2.0
    # Overlapping, and centred alike: a tall piece (big type, a blot) links no two rows.
    same_row = (overlap >= ROW_OVERLAP * lower) & (np.abs(cy[:, None] - cy[None, :]) <= 0.5 * lower)
    gap = x0[None, :] - x1[:, None]  # gap[i, j]: from the end of i to the start of j
    # j is right of i: starts after i's centre and after i ends (a little overlap allowed).
    right_of = (x0[None, :] > (x0[:, None] + x1[:, None]) / 2.0) & (
        gap > -0.25 * np.minimum(h[:, None], h[None, :])
    )
    cand = np.where(same_row & right_of, gap, np.inf)
    np.fill_diagonal(cand, np.inf)
    nxt = np.argmin(cand, axis=1)
    has = np.isfinite(cand[np.arange(n), nxt])
    # Mutual: i's nearest on the right is j and j's nearest on the left is i.
    cand_left = np.where(np.isfinite(cand), cand, np.inf)
    prv = np.argmin(cand_left, axis=0)
    succ = np.full(n, -1)
    pred = np.full(n, -1)
    for i in np.flatnonzero(has):
        j = int(nxt[i])
        if prv[j] == i:
            succ[i], pred[j] = j, i
    rows: list[list[int]] = []
    for i in np.flatnonzero(pred < 0):
        row = [int(i)]
        while succ[row[-1]] >= 0:
            row.append(int(succ[row[-1]]))
        rows.append(row)
    rows = _join_chains(rows, b)
    keys = [float(np.mean((y0[row] + y1[row]) / 2.0)) for row in rows]
    order = np.argsort(keys, kind="stable")
    return [[int(idx[j]) for j in rows[k]] for k in order]


def _join_chains(rows: list[list[int]], b: np.ndarray) -> list[list[int]]:
    """Join chains of one row that a small piece broke apart (a fragment linked to the word
    before it but too small to link on): chain B follows chain A when B starts after A ends
    and their bands (median top and bottom of their pieces) overlap like two pieces of a row.
    The nearest such chain is taken, each chain joined at most once on either side."""
    if len(rows) < 2:
        return rows
    top = np.array([np.median(b[r, 1]) for r in rows])
    bottom = np.array([np.median(b[r, 3]) for r in rows])
    start = np.array([b[r[0], 0] for r in rows])
    end = np.array([b[r[-1], 2] for r in rows])
    h = bottom - top
    lower = np.minimum(h[:, None], h[None, :])
    overlap = np.minimum(bottom[:, None], bottom[None, :]) - np.maximum(top[:, None], top[None, :])
    centre = (top + bottom) / 2.0
    gap = start[None, :] - end[:, None]
    ok = (
        (overlap >= ROW_OVERLAP * lower)
        & (np.abs(centre[:, None] - centre[None, :]) <= 0.5 * lower)
        & (gap > -0.25 * lower)
    )
    np.fill_diagonal(ok, False)
    cand = np.where(ok, gap, np.inf)
    after = np.full(len(rows), -1)
    taken = np.zeros(len(rows), bool)
    for a in np.argsort(cand.min(axis=1)):
        if not np.isfinite(cand[a].min()):
            break
        for c in np.argsort(cand[a]):
            if not np.isfinite(cand[a, c]):
                break
            if not taken[c] and not _reaches(after, c, int(a)):
                after[a], taken[c] = c, True
                break
    out: list[list[int]] = []
    for a in np.flatnonzero(~taken):
        row, k = list(rows[a]), int(after[a])
        while k >= 0:
            row += rows[k]
            k = int(after[k])
        out.append(row)
    return out


def _reaches(after: np.ndarray, start: int, target: int) -> bool:
    """Whether following ``after`` from ``start`` comes to ``target`` (a join would loop)."""
    k = start
    while k >= 0:
        if k == target:
            return True
        k = int(after[k])
    return False
