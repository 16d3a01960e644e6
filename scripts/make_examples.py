"""Write examples/: the small documents that the README's and docs/api.md's examples use.

    .venv/bin/python scripts/make_examples.py          # rewrite examples/
    .venv/bin/python scripts/make_examples.py --check  # exit 1 when examples/ would change

Everything is made here, deterministically (Pillow's bundled font, fixed seeds, no system font),
from three short news texts: a text file and a JSONL file of them, a scanned-looking page (PNG),
a single text line (PNG), a two-page scanned PDF (JPEG pages, no text layer) and a PDF with a
text layer. The whole folder stays well under 1 MB.
"""

from __future__ import annotations

import json
import random
import sys
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.generated import main_many  # noqa: E402
from tests.support.documents import bundled_font, encode, make_pdf  # noqa: E402

OUT = ROOT / "examples"

#: The three news texts (invented): (id, paragraphs).
NEWS: list[tuple[str, list[str]]] = [
    (
        "budget",
        [
            "The city council approved a new budget on Tuesday after months of debate. "
            "The budget raises spending on schools by four per cent and cuts road repairs. "
            "Teachers welcomed the increase and said class sizes would fall next year.",
            "Residents of the northern district asked why their roads were left out again. "
            "Several of them spoke at the meeting and showed photographs of damaged streets. "
            "The mayor said the plan was fair and promised a review of road works in spring.",
            "The budget also funds two new bus lines and a longer opening time for the public "
            "library. The council will meet again in March to vote on the harbour project.",
        ],
    ),
    (
        "bridge",
        [
            "Engineers finished the new bridge across the river on Monday, two months ahead of "
            "plan. The bridge cuts the drive between the two towns from forty minutes to ten. "
            "It cost 120 million pounds, paid by the regional government.",
            "Work started three years ago, after the old ferry was retired. Hundreds of people "
            "walked across the bridge on its first morning, and cyclists have a lane of their "
            "own. Local shops expect more customers from the other town.",
            "Some residents worry about traffic on the narrow streets near the river. The "
            "regional government said it would study a new ring road next year.",
        ],
    ),
    (
        "harvest",
        [
            "Farmers in the valley expect their best apple harvest in a decade after a warm and "
            "wet summer. Growers say the fruit is larger than usual and has fewer marks from "
            "hail. Prices at the market have already fallen by a fifth.",
            "The cooperative hired forty extra pickers and rented two cold stores to keep the "
            "crop until spring. Its manager said the main risk now is an early frost in "
            "October. Juice makers have asked for twice their usual volume.",
        ],
    ),
]

#: One text line for line-mode OCR.
LINE = "The National Research Council meets on Monday, 9 May."


def text_of(paragraphs: list[str]) -> str:
    return "\n\n".join(paragraphs)


def scanned_page(paragraphs: list[str], seed: int, dpi: int = 200) -> Image.Image:
    """A Letter page of ``paragraphs`` in 11-pt type at ``dpi``, as a flatbed scanner gives it
    back: off-white paper lit unevenly, a slight tilt, soft edges, a few specks of dust."""
    rng = random.Random(seed)
    width, height = int(8.5 * dpi), int(11 * dpi)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    size = round(11 / 72 * dpi)
    font = bundled_font(size)
    y = dpi
    for paragraph in paragraphs:
        for line in textwrap.wrap(paragraph, width=int((width - 2 * dpi) / (size * 0.5))):
            draw.text((dpi, y), line, fill=0, font=font)
            y += round(size * 1.45)
        y += round(size * 0.8)
    for _ in range(60):  # dust
        x, yy, r = rng.randrange(width), rng.randrange(height), rng.choice((1, 1, 2))
        draw.ellipse((x, yy, x + r, yy + r), fill=rng.randrange(60, 160))
    page = page.rotate(rng.uniform(0.6, 1.0), Image.Resampling.BICUBIC, fillcolor=255)
    page = page.filter(ImageFilter.GaussianBlur(0.7))
    # Paper and ink: white → a light grey that darkens towards the right edge, black → grey 35.
    light = Image.linear_gradient("L").rotate(90).resize((width, height))
    paper = light.point(lambda v: 246 - v * 14 // 255)
    return Image.composite(paper, Image.new("L", page.size, 35), page)


def line_image(text: str) -> Image.Image:
    """One dark-on-white text line, 40-px type, tightly cropped like a line detector does."""
    font = bundled_font(40)
    img = Image.new("L", (int(font.getlength(text)) + 24, 64), 255)
    ImageDraw.Draw(img).text((12, 10), text, font=font, fill=20)
    return img


def text_pdf_lines(paragraphs: list[str]) -> list[str]:
    """The paragraphs as the lines of a Helvetica 11-pt text layer on a Letter page."""
    lines: list[str] = []
    for paragraph in paragraphs:
        lines += [*textwrap.wrap(paragraph, width=90), ""]
    return lines


def build() -> dict[str, bytes]:
    """Every example file: name → bytes."""
    texts = {doc_id: paragraphs for doc_id, paragraphs in NEWS}
    bridge = texts["bridge"]
    return {
        "news.txt": (text_of(texts["budget"]) + "\n").encode(),
        "news.jsonl": "".join(
            json.dumps({"id": doc_id, "text": text_of(p)}) + "\n" for doc_id, p in NEWS
        ).encode(),
        "page.png": encode(scanned_page(texts["budget"], seed=1), "PNG", optimize=True),
        "line.png": encode(line_image(LINE), "PNG", optimize=True),
        # The bridge story over two pages: its first two paragraphs, then the third.
        "scan-2pages.pdf": make_pdf(
            [scanned_page(bridge[:2], seed=2, dpi=150), scanned_page(bridge[2:], seed=3, dpi=150)]
        ),
        "text.pdf": make_pdf([text_pdf_lines(texts["harvest"])]),
    }


def main(argv: list[str] | None = None) -> int:
    def files() -> dict[Path, str | bytes]:
        return {OUT / name: data for name, data in build().items()}

    command = ".venv/bin/python scripts/make_examples.py"
    return main_many("examples/", files, "scripts/make_examples.py", command, argv)


if __name__ == "__main__":
    raise SystemExit(main())
