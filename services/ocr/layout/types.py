"""What page analysis hands on: line crops in reading order, and what was found on the page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LineCrop:
    """One text line, ready for the recognizer.

    box: ``(x0, y0, x1, y1)`` in the input page's pixels (x1, y1 exclusive): the axis-aligned
    bounding box of the line (of its rectangle mapped back through the deskew rotation).
    image: uint8 grey ``[h, w]``, dark text on light, upright, the line with a small margin.
    row: the text row the line is on, counted in reading order from 0. Far-apart
    fields (a receipt's "Total ... 12.50", words either side of a wide space) are separate
    lines of one row: join lines of one row with a space, rows with a newline, to get the
    text as laid out.
    """

    box: tuple[int, int, int, int]
    image: np.ndarray = field(repr=False, compare=False)
    row: int = 0


@dataclass(frozen=True)
class PageLayout:
    """Page analysis result.

    lines: in reading order (columns left to right, each top to bottom; within a column, rows
    top to bottom and pieces of one row left to right). skew_deg: the skew that was corrected,
    in degrees, positive when the text was turned counter-clockwise (as displayed).
    inverted: the page had light text on dark. columns: text columns found (the most of any
    band of the page; 0 on a page without text). text_height: the typical glyph height found,
    in input pixels (0.0 without text).
    """

    lines: list[LineCrop]
    skew_deg: float
    inverted: bool
    columns: int
    text_height: float = 0.0


#: Asked between the stages of page analysis: True once the page is no longer wanted.
StopCheck = Callable[[], bool]


class AnalysisStopped(Exception):
    """Page analysis stopped between two stages because its caller no longer wants the page
    (the request was cancelled or ran out of time)."""
