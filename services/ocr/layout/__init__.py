"""Page analysis for OCR: deskew, polarity, binarization, text lines, reading order, crops.

Pure numpy/OpenCV. :func:`analyze_page` takes a grey page and returns its lines in reading
order as upright crops (dark on light) for the recognizer, with their boxes on the input page;
given a ``should_stop`` check, it stops between stages once the page is no longer wanted.
"""

from .analyze import analyze_page
from .config import LayoutConfig
from .types import AnalysisStopped, LineCrop, PageLayout, StopCheck

__all__ = [
    "AnalysisStopped",
    "LayoutConfig",
    "LineCrop",
    "PageLayout",
    "StopCheck",
    "analyze_page",
]
