"""Page analysis for OCR: deskew, polarity, binarization, text lines, reading order, crops.

Pure numpy/OpenCV. :func:`analyze_page` takes a grey page and returns its lines in reading
order as upright crops (dark on light) for the recognizer, with their boxes on the input page.
"""

from .analyze import analyze_page
from .config import LayoutConfig
from .types import LineCrop, PageLayout

__all__ = ["LayoutConfig", "LineCrop", "PageLayout", "analyze_page"]
