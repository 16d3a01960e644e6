"""Tiny documents made in code for the gateway's tests and bench: text pages as images
(a scan), multi-page TIFFs, and PDFs with a text layer, scanned pages, or a password."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from tests.pdfwriter import pdf_string, serialize

#: A short news text: its sentences are what the tests look for in OCR output and summaries.
ARTICLE = [
    "The city council approved a new budget on Tuesday after months of debate.",
    "The budget raises spending on schools by four per cent and cuts road repairs.",
    "Teachers welcomed the increase and said class sizes would fall next year.",
    "Residents of the northern district asked why their roads were left out again.",
    "The mayor said the plan was fair and promised a review of road works in spring.",
    "The council will meet again in March to vote on the harbour project.",
]

_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf"),
)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in _FONTS:
        if path.exists():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)  # Pillow's bundled scalable font


def text_page(
    sentences: list[str], dpi: int = 300, width_in: float = 8.5, height_in: float = 11.0
) -> Image.Image:
    """A white grey-scale page with ``sentences`` wrapped as 11-pt lines, as printed at ``dpi``."""
    width, height = int(width_in * dpi), int(height_in * dpi)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    size = round(11 / 72 * dpi)
    font = _font(size)
    y = dpi  # one-inch margins
    chars_per_line = int((width_in - 2) * 72 / 11 * 1.9)  # ~1.9 characters per em
    for line in textwrap.wrap(" ".join(sentences), width=chars_per_line):
        draw.text((dpi, y), line, fill=0, font=font)
        y += round(size * 1.5)
    return page


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def tiff_bytes(images: list[Image.Image]) -> bytes:
    """A multi-page TIFF (each image a frame), compressed losslessly."""
    out = io.BytesIO()
    images[0].save(
        out,
        format="TIFF",
        save_all=True,
        append_images=images[1:],
        compression="tiff_deflate",
        dpi=(300, 300),
    )
    return out.getvalue()


def scanned_pdf(images: list[Image.Image], dpi: int = 300) -> bytes:
    """A PDF of page images only, no text layer: what a scanner makes."""
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return out.getvalue()


def make_pdf(pages: list[list[str] | Image.Image], encrypt: bool = False) -> bytes:
    """A PDF written by hand: a page is lines of text (a Helvetica text layer) or an image
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
            jpeg = io.BytesIO()
            page.convert("L").save(jpeg, format="JPEG", quality=85)
            data = jpeg.getvalue()
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
