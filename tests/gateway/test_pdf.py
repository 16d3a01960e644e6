"""PDF reading with pypdfium2 on PDFs made in code: text layers, scans, limits, passwords,
damaged page trees."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from docsum.common.errors import InvalidInput
from docsum.gateway.pdf import PdfDocument, encode_png, render_pixels, usable_text
from tests.gateway.documents import ARTICLE, make_pdf, scanned_pdf, text_page
from tests.hostile import costly


def _layers(doc: PdfDocument, min_chars: int = 16) -> list[str | None]:
    """Each page's text layer, None where it is not usable text (the gateway's rule)."""
    texts = [doc.page_text(n)[0] for n in range(1, doc.page_count + 1)]
    return [t.strip() if usable_text(t, min_chars) else None for t in texts]


def test_text_layer_pages_are_read_and_scanned_pages_are_left_for_ocr() -> None:
    pdf = make_pdf([ARTICLE[:3], text_page(ARTICLE[3:], dpi=100), ["Page 3: short."]])
    with PdfDocument(pdf, max_pages=10) as doc:
        pages = _layers(doc)
    assert len(pages) == 3
    assert pages[0] is not None and pages[0].splitlines() == ARTICLE[:3]
    assert pages[1] is None  # an image only
    assert pages[2] is None  # 9 letters and digits: too little to trust over OCR


def test_scanned_page_renders_grey_at_the_asked_resolution() -> None:
    pdf = scanned_pdf([text_page(ARTICLE, dpi=150)], dpi=150)  # an 8.5 × 11 in page
    with PdfDocument(pdf, max_pages=10) as doc:
        assert _layers(doc) == [None]
        image = doc.render(1, dpi=300, max_pixels=40_000_000)
        assert image.mode == "L" and image.size == pytest.approx((2550, 3300), abs=2)
        small = doc.render(1, dpi=300, max_pixels=1_000_000)  # capped: lower resolution
        assert small.width * small.height <= 1_000_000 and small.width > 800
    assert encode_png(small).startswith(b"\x89PNG")
    # The ink survived: dark pixels where the text is.
    low, high = image.getextrema()
    assert low < 64 and high == 255


def test_password_protected_pdf_is_refused_with_a_message() -> None:
    with pytest.raises(InvalidInput, match="encrypted and needs a password"):
        PdfDocument(make_pdf([ARTICLE[:2]], encrypt=True), max_pages=10)


def test_page_limit_and_broken_pdfs() -> None:
    with pytest.raises(InvalidInput, match="12 pages; the limit is 10"):
        PdfDocument(make_pdf([["x"]] * 12), max_pages=10)
    with pytest.raises(InvalidInput, match="not a readable PDF"):
        PdfDocument(b"%PDF-1.4\nthis is not a PDF body", max_pages=10)


def test_usable_text_wants_letters_not_garbage() -> None:
    assert usable_text("The council approved the budget.", 16)
    assert not usable_text("Page 3", 16)
    assert not usable_text("\ue000\ue001\ue002" * 20 + "abcdefghijklmnopqrstuvwxyz", 16)


def test_a_scanners_jpeg_page_is_sent_as_it_is() -> None:
    scan = text_page(ARTICLE)  # 300 dpi
    with PdfDocument(scanned_pdf([scan]), max_pages=10) as doc:
        jpeg = doc.embedded_scan(1, 200, 450)
        assert jpeg is not None and jpeg.startswith(b"\xff\xd8\xff")
        assert Image.open(io.BytesIO(jpeg)).size == scan.size
    with PdfDocument(make_pdf([text_page(ARTICLE, dpi=150)]), max_pages=10) as doc:
        assert doc.embedded_scan(1, 200, 450) is None  # 150 dpi: rendered at 300 instead
    with PdfDocument(make_pdf([ARTICLE, scan]), max_pages=10) as doc:
        assert doc.embedded_scan(1, 200, 450) is None  # text, no image
        assert doc.embedded_scan(2, 200, 450) is not None
        assert doc.embedded_scan(2, 0, 0) is None  # the setting that renders every page


def test_page_sizes_come_from_the_page_tree_and_text_is_cut_at_its_limit() -> None:
    with PdfDocument(make_pdf([ARTICLE, ["Two."]]), max_pages=10) as doc:
        assert doc.sizes == [(612.0, 792.0), (612.0, 792.0)]
        text, cut = doc.page_text(1, max_chars=20)
        assert (len(text), cut) == (20, True) and ARTICLE[0].startswith(text)
        assert doc.page_text(2, max_chars=20) == ("Two.", False)
    # A Letter page at 300 dpi, and one capped by the pixel limit.
    assert render_pixels((612.0, 792.0), 300, 40_000_000) == 2550 * 3300
    assert render_pixels((6120.0, 7920.0), 300, 40_000_000) == 40_000_000


def test_a_page_tree_that_promises_missing_pages_is_invalid_input_naming_the_page() -> None:
    with pytest.raises(InvalidInput, match="page 2 of the PDF's 100 cannot be read"):
        PdfDocument(costly.lying_count_pdf(), max_pages=100)
