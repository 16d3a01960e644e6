"""Documents made in code: text lines and pages as images, PNG/TIFF files, and PDFs with a
text layer, scanned pages or a password, written by hand (no PDF library).

Pillow and the standard library only: the load generator's image imports this module.
"""

from __future__ import annotations

import io
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

# ---------------------------------------------------------------------------------------------
# Fonts

_SERIF_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf"),
    Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"),
    Path("/usr/share/fonts/truetype/freefont/FreeSerif.ttf"),
)


@cache
def serif_font(size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A system serif at ``size_px``, else Pillow's bundled scalable font."""
    for path in _SERIF_FONTS:
        if path.is_file():
            return ImageFont.truetype(str(path), size_px)
    return ImageFont.load_default(size=size_px)


def bundled_font(size_px: int = 28) -> ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font: the same glyphs on every machine, no system font needed."""
    return ImageFont.load_default(size=size_px)  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Text lines and one-column pages, for the OCR tests (in the bundled font)

LINES = (
    "The quick brown fox jumps over 13 lazy dogs.",
    "Invoice 2024-0117 was paid on Monday, 9 May.",
    "Call the office before noon to book a room.",
    "Prices rose by 4 per cent in the last quarter.",
    "Send the signed copy back within ten days.",
)


def line_image(text: str, size: int = 28, pad: int = 10) -> Image.Image:
    """One dark-on-white text line, ``size`` px high glyphs, ``pad`` px around."""
    f = bundled_font(size)
    w = int(f.getlength(text)) + 2 * pad
    img = Image.new("L", (w, int(size * 1.6)), 255)
    ImageDraw.Draw(img).text((pad, size // 4), text, font=f, fill=0)
    return img


def page_image(
    lines: tuple[str, ...] = LINES, size: int = 28, width: int = 1000, gap: float = 2.2
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A one-column page and the ink boxes of its lines (x0, y0, x1, y1), in pixels."""
    f = bundled_font(size)
    step = int(size * gap)
    img = Image.new("L", (width, 80 + step * len(lines)), 255)
    draw = ImageDraw.Draw(img)
    boxes = []
    for i, text in enumerate(lines):
        xy = (60, 40 + i * step)
        draw.text(xy, text, font=f, fill=0)
        boxes.append(tuple(int(v) for v in draw.textbbox(xy, text, font=f)))
    return img, boxes  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Printed pages, as a scanner sees them

#: A short news text: its sentences are what the tests look for in OCR output and summaries.
ARTICLE = [
    "The city council approved a new budget on Tuesday after months of debate.",
    "The budget raises spending on schools by four per cent and cuts road repairs.",
    "Teachers welcomed the increase and said class sizes would fall next year.",
    "Residents of the northern district asked why their roads were left out again.",
    "The mayor said the plan was fair and promised a review of road works in spring.",
    "The council will meet again in March to vote on the harbour project.",
]


def text_page(
    sentences: list[str], dpi: int = 300, width_in: float = 8.5, height_in: float = 11.0
) -> Image.Image:
    """A white grey-scale page with ``sentences`` wrapped as 11-pt lines, as printed at ``dpi``."""
    width, height = int(width_in * dpi), int(height_in * dpi)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    size = round(11 / 72 * dpi)
    font = serif_font(size)
    y = dpi  # one-inch margins
    chars_per_line = int((width_in - 2) * 72 / 11 * 1.9)  # ~1.9 characters per em
    for line in textwrap.wrap(" ".join(sentences), width=chars_per_line):
        draw.text((dpi, y), line, fill=0, font=font)
        y += round(size * 1.5)
    return page


# ---------------------------------------------------------------------------------------------
# Image files


def encode(img: Image.Image | list[Image.Image], fmt: str, **kw: Any) -> bytes:
    """Image(s) → file bytes in ``fmt`` (a list becomes a multi-frame file: TIFF, PDF)."""
    buf = io.BytesIO()
    if isinstance(img, list):
        # Copies: an image saved before keeps that encoder's settings, which the writer of the
        # appended frames would pick up.
        first, *rest = (i.copy() for i in img)
        first.save(buf, fmt, save_all=True, append_images=rest, **kw)
    else:
        img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    return encode(image, "PNG")


def tiff_bytes(pages: list[Image.Image], dpi: int = 300) -> bytes:
    """A multi-page TIFF (every frame a page), Deflate-compressed."""
    return encode(pages, "TIFF", compression="tiff_adobe_deflate", dpi=(dpi, dpi))


def scanned_pdf(pages: list[Image.Image], dpi: int = 300) -> bytes:
    """A PDF of page images only, no text layer: what a scanner makes."""
    return encode(pages, "PDF", resolution=dpi)


# ---------------------------------------------------------------------------------------------
# PDFs written by hand


def pdf_string(text: str) -> bytes:
    """``text`` as a PDF literal string, ``(...)`` with ``\\``, ``(`` and ``)`` escaped."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped})".encode("latin-1", "replace")


def serialize(objects: list[bytes], root: int, trailer_extra: bytes = b"") -> bytes:
    """A PDF file of objects ``1..n`` (``objects[i]`` is object ``i + 1``), catalog ``root``."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    out.write(b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets))
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R".encode() + trailer_extra)
    out.write(f" >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def make_pdf(pages: list[list[str] | Image.Image], encrypt: bool = False) -> bytes:
    """A Letter-size PDF: a page is lines of text (a Helvetica text layer) or an image
    (a scanned page, JPEG). ``encrypt`` adds a standard security handler whose user password
    is not empty: readers ask for a password."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    pages_obj = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for page in pages:
        resources = f"/Font << /F1 {font} 0 R >>"
        if isinstance(page, Image.Image):
            data = encode(page.convert("L"), "JPEG", quality=85)
            image = add(
                f"<< /Type /XObject /Subtype /Image /Width {page.width} /Height {page.height} "
                f"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode "
                f"/Length {len(data)} >>\nstream\n".encode()
                + data
                + b"\nendstream"
            )
            resources += f" /XObject << /Im1 {image} 0 R >>"
            stream = b"q 612 0 0 792 0 0 cm /Im1 Do Q"
        else:
            ops = [b"BT /F1 11 Tf 14 TL 72 720 Td"]
            ops += [pdf_string(line) + b" Tj T*" for line in page]
            ops.append(b"ET")
            stream = b"\n".join(ops)
        content = add(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
        kids.append(
            add(
                f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 612 792] "
                f"/Resources << {resources} >> /Contents {content} 0 R >>".encode()
            )
        )
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_obj} 0 R >>".encode()
    objects[pages_obj - 1] = (
        f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    ).encode()
    trailer_extra = b""
    if encrypt:
        # O and U that no empty password matches: the reader needs the (unknown) password.
        enc = add(
            b"<< /Filter /Standard /V 1 /R 2 /O <"
            + b"ab" * 32
            + b"> /U <"
            + b"cd" * 32
            + b"> /P -4 >>"
        )
        trailer_extra = f" /Encrypt {enc} 0 R /ID [<{'01' * 16}> <{'01' * 16}>]".encode()
    return serialize(objects, catalog, trailer_extra)
