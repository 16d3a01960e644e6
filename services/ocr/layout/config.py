"""Page-analysis tunables. Lengths are in units of the page's estimated text height ``th``
(the typical height of a glyph's connected component, about the x-height to cap height) unless
they say ``px``, so one setting fits 100 dpi and 600 dpi scans alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayoutConfig:
    """Tunables of :func:`docsum.ocr.layout.analyze_page`, with defaults that fit print scans,
    book pages and receipts.

    Resolution
      probe_side_px: the page is first looked at shrunk by a whole factor to at most this
        long a side (polarity, rough text height). analysis_text_height_px: it is then
        analysed shrunk by the whole factor that brings ``th`` nearest this (never enlarged;
        whole factors are fast); crops are cut from the input page.
    Polarity and ink
      polarity_contrast: a pixel counts as clearly darker/lighter than its surroundings when it
        differs from the local mean by this fraction of the page's strongest local contrast;
        the page is inverted when clearly-lighter pixels outnumber clearly-darker ones.
      background_window: window (th) of the max filter that estimates the paper behind the ink
        (wider than any stroke, so it erases glyphs and keeps illumination changes).
      min_ink_contrast: ink must be at least this much darker than the paper (fraction of the
        paper's brightness); a page with nothing darker is blank.
    Components
      min_glyph: a component lower than this (th) is a mark (dot, comma, dash, accent,
        speck): it joins a line it sits on, never starts or links one.
      large_glyph: taller than this (th): big type (headings), grouped into lines of its own.
      max_glyph_height / max_glyph_width: larger components are graphics (pictures, frames,
        borders) and are ignored. rule_ratio: components longer than this many times their
        thickness (and longer than 4 th, or upright and taller than 1.6 th) are rules,
        separators or barcode bars, ignored.
      picture_ink: a graphic that inks at least this fraction of its box is a picture; nothing
        inside its box is read (a sparse one is a frame, which may hold text).
    Deskew
      max_skew_deg: skew searched within ±this. skew_step_deg: the coarse search step.
      min_skew_deg: a smaller skew is not corrected (the crops are cut unrotated).
    Lines
      core_height: a glyph takes part in line finding by its middle band, this fraction of th
        high, so ascenders and descenders touching the next line cannot merge two lines.
      piece_gap: glyphs closer than this (th) form a piece of a line (a word or a few), the
        unit column gutters are looked for between; below ``min_gutter``.
      split_gap: a row is cut into separate lines (of one row, see ``LineCrop.row``; ordered
        left to right) at gaps wider than this (th): the fields of a receipt row three or more
        characters apart (docs/decisions.md, "Split gap between fields of a row").
    Reading order
      min_gutter: a column gutter is at least this wide (th). min_column_width: both columns'
        median line width is at least this (th), so a receipt's price column is not a column.
      min_column_lines: each column holds at least this many lines.
    Crops
      margin_y: margin above and below a line, as a fraction of the line's height (ascenders
        to descenders); never more than half the gap to the next line (docs/decisions.md,
        "Vertical crop margin"). margin_x: margin at the line's ends (th).
    """

    probe_side_px: int = 1200
    analysis_text_height_px: float = 11.0
    polarity_contrast: float = 0.5
    background_window: float = 1.5
    min_ink_contrast: float = 0.2
    min_glyph: float = 0.6
    large_glyph: float = 2.2
    max_glyph_height: float = 6.0
    max_glyph_width: float = 30.0
    rule_ratio: float = 12.0
    picture_ink: float = 0.15
    max_skew_deg: float = 15.0
    skew_step_deg: float = 0.25
    min_skew_deg: float = 0.05
    core_height: float = 0.6
    piece_gap: float = 1.0
    split_gap: float = 2.5
    min_gutter: float = 1.5
    min_column_width: float = 15.0
    min_column_lines: int = 3
    margin_y: float = 0.05
    margin_x: float = 0.5
