"""The OCR service's own metrics (the kit's request, stage and batcher metrics come too)."""

from __future__ import annotations

from prometheus_client import Counter

OCR_PAGES = Counter("docsum_ocr_pages_total", "Pages read (a line-mode image counts as a page).")
OCR_LINES = Counter("docsum_ocr_lines_total", "Text lines recognized.")
OCR_ANALYSES_STOPPED = Counter(
    "docsum_ocr_page_analyses_stopped_total",
    "Page analyses stopped part-way because their request had ended (cancelled, timed out).",
)
