"""Realistic request bodies, made in code: news-like articles and rendered document pages.

Nothing is downloaded and no file is read except a system font (DejaVu / Liberation serif when
installed, else Pillow's built-in scalable font). Everything is seeded, so a run is repeatable.

- :func:`article` — an English article of a given length: paragraphs of 12-35-word sentences
  built from a small grammar (the summarizer's cost grows with sentences and their tokens, so
  their count and length matter, not their truth). Lengths follow news: median ~600 words.
- :func:`page_image` — an A4 page at 300 dpi (what a scanner and the gateway's PDF renderer
  produce), grey, with a title and justified-ish paragraphs in an 11 pt serif.
- :func:`text_pdf` — a PDF with a real text layer (born-digital); with the multi-page TIFF
  and the image-only PDF (a scan) of ``tests/support/documents.py``, the document pipeline's
  inputs.

This module does not import Locust (no gevent monkey-patching): tests and tools can use it.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass

from PIL import Image, ImageDraw

from tests.support.documents import (
    pdf_string,
    png_bytes,
    scanned_pdf,
    serialize,
    serif_font,
    tiff_bytes,
)

# A small grammar for news prose. Slots are filled at random; sentences are 12-35 words.
_SUBJECTS = [
    "The city council",
    "The health ministry",
    "A group of researchers",
    "The central bank",
    "Local residents",
    "The company's board",
    "Union leaders",
    "The regional governor",
    "Engineers at the plant",
    "The school district",
    "Hospital managers",
    "The transport agency",
    "Farmers in the valley",
    "The university",
    "Police officials",
    "The environment agency",
    "Several small businesses",
    "The opposition party",
    "Federal investigators",
    "The museum",
]
_VERBS = [
    "approved",
    "rejected",
    "announced",
    "questioned",
    "delayed",
    "published",
    "defended",
    "criticised",
    "proposed",
    "expanded",
    "reviewed",
    "cancelled",
    "welcomed",
    "funded",
]
_OBJECTS = [
    "a new budget for the coming year",
    "plans for a second bridge across the river",
    "a report on air quality in the northern districts",
    "a contract worth {n} million dollars",
    "changes to the local bus network",
    "a study of {n} patients over three years",
    "the decision to close two branches",
    "a programme to train {n} nurses",
    "new rules on short-term rentals",
    "an inquiry into the flooding of {month}",
    "the sale of the old railway yard",
    "higher fees for parking in the centre",
    "a pilot scheme for free school meals",
    "the merger of the two water utilities",
]
_CLAUSES = [
    "after months of debate",
    "despite strong objections from neighbours",
    "following a vote on {weekday}",
    "according to documents seen by reporters",
    "in a statement released on {weekday}",
    "less than a year after the last election",
    "amid growing concern about rising costs",
    "once the survey results were known",
    "while the inquiry is still under way",
    "as prices rose by {p} per cent",
]
_FOLLOW_UPS = [
    "Critics said the plan would cost more than {n} million dollars and help too few people.",
    "Supporters argued that the change was long overdue and would pay for itself within {y} years.",
    "A spokesperson declined to comment on the details but promised a full report by {month}.",
    "The figures show that {p} per cent of households in the area were affected last winter.",
    "Officials expect the work to begin in {month} and to take about {y} years to finish.",
    "Residents who spoke at the meeting were divided, and several asked for a public consultation.",
    "The previous attempt, in {year}, was abandoned after the main contractor went bankrupt.",
    "Independent experts said the data were incomplete and called for a larger study.",
    "The proposal will now go to a second committee, which meets again on {weekday}.",
    "Opposition members said they would challenge the decision in court if necessary.",
]
_MONTHS = ["January", "March", "April", "June", "September", "October", "November"]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
_TITLES = [
    "Council approves budget after long debate",
    "New study questions air quality figures",
    "Transport agency plans network overhaul",
    "Hospital managers warn of staff shortages",
    "Bank holds rates as prices climb",
    "Residents divided over bridge plans",
]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        n=rng.choice([2, 4, 12, 35, 120, 480]),
        p=rng.choice([3, 7, 12, 18, 26, 41]),
        y=rng.choice([2, 3, 5, 10]),
        year=rng.randint(1998, 2023),
        month=rng.choice(_MONTHS),
        weekday=rng.choice(_WEEKDAYS),
    )


def sentence(rng: random.Random) -> str:
    """One news sentence of roughly 12-35 words."""
    if rng.random() < 0.35:
        return _fill(rng.choice(_FOLLOW_UPS), rng)
    s = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {_fill(rng.choice(_OBJECTS), rng)}"
    if rng.random() < 0.7:
        s += f" {_fill(rng.choice(_CLAUSES), rng)}"
    if rng.random() < 0.3:
        s += f", and {rng.choice(_SUBJECTS).lower()} {rng.choice(_VERBS)} " + _fill(
            rng.choice(_OBJECTS), rng
        )
    return s + "."


def article(words: int, rng: random.Random) -> str:
    """An article of about ``words`` words, in paragraphs of 2-6 sentences."""
    paragraphs: list[str] = []
    count = 0
    while count < words:
        para = [sentence(rng) for _ in range(rng.randint(2, 6))]
        paragraphs.append(" ".join(para))
        count += sum(len(s.split()) for s in para)
    return "\n\n".join(paragraphs)


def article_words(rng: random.Random) -> int:
    """A news-like length: log-normal, median 600 words, 150 to 2,000."""
    return int(min(2000, max(150, rng.lognormvariate(math.log(600), 0.5))))


# ---------------------------------------------------------------------------------------------
# Pages

A4_MM = (210, 297)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: object, width: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not line:  # type: ignore[arg-type]
            line = trial
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def page_image(rng: random.Random, dpi: int = 300, fill: float = 1.0) -> Image.Image:
    """An A4 page at ``dpi``: a title and paragraphs of an article in an 11 pt serif.

    ``fill`` (0-1) is how much of the text block is used: 1 is a full page (~40 lines at
    300 dpi), 0.3 a short letter.
    """
    w, h = (round(mm / 25.4 * dpi) for mm in A4_MM)
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    margin = round(dpi * 0.9)
    body = serif_font(round(11 / 72 * dpi))
    title = serif_font(round(16 / 72 * dpi))
    leading = round(11 / 72 * dpi * 1.45)
    y = margin
    draw.text((margin, y), rng.choice(_TITLES), font=title, fill=20)
    y += round(16 / 72 * dpi * 2.2)
    bottom = margin + (h - 2 * margin) * min(1.0, max(0.05, fill))
    while y + leading < bottom:
        for line in _wrap(draw, " ".join(sentence(rng) for _ in range(4)), body, w - 2 * margin):
            if y + leading >= bottom:
                break
            draw.text((margin, y), line, font=body, fill=rng.randint(0, 40))
            y += leading
        y += leading // 2  # paragraph gap
    return img


def text_pdf(rng: random.Random, pages: int, lines_per_page: int = 46) -> bytes:
    """A born-digital PDF: ``pages`` A4 pages of article text in Helvetica, a real text layer.

    Written by hand (PDF 1.4, one content stream per page, the standard Type 1 font), so no PDF
    library is needed to make it.
    """
    width_pt, height_pt = 595, 842
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    page_ids: list[int] = []
    pages_id = len(objects) + 2 * pages + 1  # the /Pages object comes after every page
    for _ in range(pages):
        words = " ".join(sentence(rng) for _ in range(lines_per_page // 2)).split()
        lines, line = [], ""
        for word in words:  # Helvetica 10 pt: ~95 characters on a 500 pt line
            if len(line) + len(word) + 1 > 95:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines = [*lines, line][:lines_per_page]
        ops = [b"BT", b"/F1 10 Tf", b"14 TL", b"50 790 Td"]
        ops += [pdf_string(ln) + b" Tj T*" for ln in lines]
        ops.append(b"ET")
        stream = b"\n".join(ops)
        content = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        page_ids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] "
                b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (pages_id, width_pt, height_pt, font, content)
            )
        )
    kids = b" ".join(b"%d 0 R" % i for i in page_ids)
    assert add(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)) == pages_id
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    return serialize(objects, catalog)


# ---------------------------------------------------------------------------------------------
# Multipart bodies, built once per payload (the load generator's CPU goes to sending, not to
# encoding).


@dataclass(frozen=True)
class Upload:
    """A ready multipart/form-data body and its content type."""

    body: bytes
    content_type: str
    kind: str  # what it is, for logs: "png-page", "tiff-2p", ...

    @property
    def size(self) -> int:
        return len(self.body)


def multipart(
    filename: str, data: bytes, media_type: str, fields: dict[str, str], kind: str
) -> Upload:
    boundary = f"docsum-{uuid.UUID(int=random.getrandbits(128)).hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: {media_type}\r\n\r\n'.encode()
        + data
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return Upload(body, f"multipart/form-data; boundary={boundary}", kind)


@dataclass(frozen=True)
class PayloadPool:
    """Payloads made once at start-up and reused: texts, OCR uploads, document uploads."""

    texts: list[str]
    ocr_uploads: list[Upload]
    documents: list[tuple[Upload, float]]  # (upload, weight)


def make_pool(seed: int = 7, n_texts: int = 24, n_pages: int = 4, dpi: int = 300) -> PayloadPool:
    """The payloads of one load generator process.

    OCR: full and part-filled A4 pages as PNG (mode=page). Documents (the pipeline), weighted
    like a mailroom: born-digital PDFs with a text layer (40 %), one-page scans as PNG (30 %),
    two-page TIFFs (15 %), two-page scanned PDFs (15 %).
    """
    rng = random.Random(seed)
    texts = [article(article_words(rng), rng) for _ in range(n_texts)]
    pages = [page_image(rng, dpi, fill) for fill in [1.0, 0.6, 0.85, 0.35][:n_pages]]
    ocr_uploads = [
        multipart(f"page-{i}.png", png_bytes(p), "image/png", {"mode": "page"}, "png-page")
        for i, p in enumerate(pages)
    ]
    summary = {"max_sentences": "3"}
    documents = [
        (multipart("letter.pdf", text_pdf(rng, 3), "application/pdf", summary, "pdf-text-3p"), 0.4),
        (multipart("scan.png", png_bytes(pages[0]), "image/png", summary, "png-page"), 0.3),
        (
            multipart("scan.tiff", tiff_bytes(pages[1:3]), "image/tiff", summary, "tiff-2p"),
            0.15,
        ),
        (
            multipart(
                "scan.pdf", scanned_pdf(pages[2:4], dpi), "application/pdf", summary, "pdf-scan-2p"
            ),
            0.15,
        ),
    ]
    return PayloadPool(texts, ocr_uploads, documents)
