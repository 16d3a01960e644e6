"""Page analysis (docsum.ocr.layout) on pages rendered in code with known line boxes.

Pages are drawn with Pillow's bundled scalable font, so CI renders what a developer's machine
does; each line's true box is the bounding box of its own ink. A found line matches a true
one at IoU >= 0.5 (one to one); recall, precision and the reading order are checked.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from docsum.ocr.layout import AnalysisStopped, LayoutConfig, LineCrop, PageLayout, analyze_page

Box = tuple[int, int, int, int]

TEXT = (
    "the quick brown fox jumps over lazy dogs while seven wizards judge boxing matches "
    "in a hall of gray stone and every night they count gold coins by the light of candles"
)
WORDS = TEXT.split()


def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)  # type: ignore[return-value]


def sentence(rng: random.Random, width_px: int, size: int) -> str:
    """Words until the text is about ``width_px`` wide at ``size``."""
    f = font(size)
    words = [rng.choice(WORDS).capitalize()]
    while f.getlength(" ".join(words)) < width_px:
        words.append(rng.choice(WORDS))
    return " ".join(words[:-1]) if len(words) > 2 else " ".join(words)


@dataclass
class Page:
    image: np.ndarray
    boxes: list[Box]  # true line boxes, in reading order


def render(
    shape: tuple[int, int],
    lines: list[tuple[int, int, str, int]],
    ink: int = 0,
    paper: int = 255,
) -> Page:
    """Draw ``(x, y, text, size)`` lines on a ``(height, width)`` page; true boxes from ink."""
    h, w = shape
    img = Image.new("L", (w, h), paper)
    draw = ImageDraw.Draw(img)
    boxes: list[Box] = []
    for x, y, text, size in lines:
        f = font(size)
        x0, y0, x1, y1 = (int(v) for v in draw.textbbox((x, y), text, font=f))
        layer = Image.new("L", (x1 - x0 + 2, y1 - y0 + 2), 0)
        ImageDraw.Draw(layer).text((x - x0, y - y0), text, font=f, fill=255)
        ys, xs = np.nonzero(np.asarray(layer) > 127)
        boxes.append(
            (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1)
        )
        draw.text((x, y), text, font=f, fill=ink)
    return Page(np.asarray(img).copy(), boxes)


def column(
    rng: random.Random, x: int, y: int, width: int, n: int, size: int, leading: float = 1.9
) -> list[tuple[int, int, str, int]]:
    return [(x, y + round(i * size * leading), sentence(rng, width, size), size) for i in range(n)]


def one_column(size: int = 26, n: int = 10, seed: int = 1) -> Page:
    rng = random.Random(seed)
    width = 40 * size
    lines = column(rng, 3 * size, 3 * size, width, n, size)
    return render((round(n * size * 1.9 + 6 * size), width + 6 * size), lines)


def iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def match(truth: list[Box], found: list[Box], thr: float = 0.5) -> dict[int, int]:
    """Greedy one-to-one matching at IoU >= thr: true index → found index."""
    pairs = sorted(
        ((iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)),
        reverse=True,
    )
    out: dict[int, int] = {}
    used: set[int] = set()
    for v, i, j in pairs:
        if v < thr:
            break
        if i not in out and j not in used:
            out[i] = j
            used.add(j)
    return out


def check(page: Page, layout: PageLayout, recall: float = 1.0, precision: float = 1.0) -> None:
    found = [ln.box for ln in layout.lines]
    m = match(page.boxes, found)
    assert len(m) >= recall * len(page.boxes), (len(m), len(page.boxes), found)
    assert len(m) >= precision * len(found), (len(m), found)
    # Reading order: the true lines that were found come out in their order.
    seq = [m[i] for i in range(len(page.boxes)) if i in m]
    assert seq == sorted(seq), seq


def turn(page: Page, angle_deg: float) -> Page:
    """The page turned counter-clockwise (as displayed) by ``angle_deg`` on a canvas that
    holds all of it; true boxes become the bounding boxes of their turned corners."""
    h, w = page.image.shape
    rad = math.radians(angle_deg)
    cw = math.ceil(w * abs(math.cos(rad)) + h * abs(math.sin(rad)))
    ch = math.ceil(w * abs(math.sin(rad)) + h * abs(math.cos(rad)))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 1.0)
    m[0, 2] += cw / 2 - w / 2
    m[1, 2] += ch / 2 - h / 2
    img = cv2.warpAffine(page.image, m, (cw, ch), flags=cv2.INTER_LINEAR, borderValue=255)
    boxes = []
    for x0, y0, x1, y1 in page.boxes:
        pts = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], float) @ m.T
        boxes.append(
            (int(pts[:, 0].min()), int(pts[:, 1].min()), int(pts[:, 0].max()), int(pts[:, 1].max()))
        )
    return Page(img, boxes)


# --- one column, crops --------------------------------------------------------------------


def test_one_column_lines_boxes_order_and_crops() -> None:
    page = one_column()
    layout = analyze_page(page.image)
    check(page, layout)
    assert layout.columns == 1 and not layout.inverted
    assert abs(layout.skew_deg) < 0.3
    assert 10 < layout.text_height < 26  # about the x-height to cap height of 26 px type
    rows = [ln.row for ln in layout.lines]
    assert rows == sorted(rows) and len(set(rows)) == len(page.boxes)
    for line in layout.lines:
        crop = line.image
        assert isinstance(line, LineCrop) and crop.dtype == np.uint8 and crop.ndim == 2
        x0, y0, x1, y1 = line.box
        # A small margin: a little taller than the line, never a neighbour line's height.
        assert y1 - y0 <= crop.shape[0] <= 1.6 * (y1 - y0)
        assert crop.shape[1] >= x1 - x0
        # Dark text on light paper.
        assert np.median(crop) > 200 and crop.min() < 60


def test_deterministic() -> None:
    page = one_column(seed=3)
    a, b = analyze_page(page.image), analyze_page(page.image.copy())
    assert [ln.box for ln in a.lines] == [ln.box for ln in b.lines]
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a.lines, b.lines, strict=True))


# --- reading order ------------------------------------------------------------------------


def test_two_columns_read_left_column_then_right() -> None:
    rng = random.Random(7)
    size, width, gutter = 22, 520, 70
    title = [(60, 40, "A Title Over Both Columns Of This Page", 34)]
    left = column(rng, 60, 130, width, 12, size)
    right = column(rng, 60 + width + gutter, 130, width, 12, size)
    page = render(
        (130 + 13 * round(size * 1.9) + 60, 60 + 2 * width + gutter + 60), title + left + right
    )
    layout = analyze_page(page.image)
    check(page, layout)
    assert layout.columns == 2


def test_two_columns_with_offset_baselines_and_short_lines() -> None:
    rng = random.Random(8)
    size, width, gutter = 20, 480, 60
    left = column(rng, 50, 50, width, 14, size)
    right = column(rng, 50 + width + gutter, 62, width, 13, size)
    # Last lines of paragraphs: short, on both sides.
    left[5] = (50, left[5][1], "end of it.", size)
    right[3] = (50 + width + gutter, right[3][1], "so it was.", size)
    page = render((50 + 15 * round(size * 1.9), 100 + 2 * width + gutter), left + right)
    layout = analyze_page(page.image)
    check(page, layout)
    assert layout.columns == 2


def test_receipt_rows_read_label_then_price_and_are_no_columns() -> None:
    rng = random.Random(5)
    size = 20
    lines = [(90, 30, "CORNER SHOP SDN BHD", 26)]
    labels = ["Bread", "Milk 1L", "Eggs x10", "Coffee beans", "Rice 5kg", "Tea", "Sugar", "Total"]
    y = 90
    for label in labels:
        lines.append((30, y, label, size))
        lines.append((380, y, f"{rng.randint(1, 99)}.{rng.randint(0, 99):02d}", size))
        y += round(size * 1.7)
    lines.append((70, y + 20, "Thank you and come again", size))
    page = render((y + 80, 480), lines)
    layout = analyze_page(page.image)
    check(page, layout)
    assert layout.columns == 1
    rows = [ln.row for ln in layout.lines]
    # Each item row: the label and its price are two lines of one row.
    assert len(set(rows)) == 2 + len(labels)
    assert all(rows.count(r) == 2 for r in set(rows[1:-1]))


def test_wide_gap_splits_a_row_but_word_spaces_do_not() -> None:
    size = 24
    page = render(
        (160, 900),
        [
            (40, 40, "Amount due", size),
            (600, 40, "12.50", size),
            (40, 100, "one two three four five six seven", size),
        ],
    )
    layout = analyze_page(page.image)
    check(page, layout)
    assert [ln.row for ln in layout.lines] == [0, 0, 1]


# --- skew ---------------------------------------------------------------------------------


@pytest.mark.parametrize("angle", [-10.0, -5.0, 5.0, 10.0])
def test_skewed_page_boxes_and_angle(angle: float) -> None:
    page = turn(one_column(size=24, n=8, seed=int(angle) + 20), angle)
    layout = analyze_page(page.image)
    assert abs(layout.skew_deg - angle) <= 0.5
    check(page, layout)
    # Crops come out upright: each is a long, low strip.
    for line in layout.lines:
        h, w = line.image.shape
        assert w > 4 * h


def test_small_skew_is_measured() -> None:
    page = turn(one_column(size=24, n=8, seed=4), 1.2)
    layout = analyze_page(page.image)
    assert abs(layout.skew_deg - 1.2) <= 0.3
    check(page, layout)


# --- polarity, light, noise -----------------------------------------------------------------


def test_inverted_page_light_text_on_dark() -> None:
    page = one_column(seed=9)
    inverted = Page(255 - page.image, page.boxes)
    layout = analyze_page(inverted.image)
    assert layout.inverted
    check(inverted, layout)
    for line in layout.lines:  # crops are turned back to dark on light
        assert np.median(line.image) > 200


def test_uneven_illumination_and_low_contrast() -> None:
    page = render(
        (900, 1300),
        column(random.Random(11), 60, 60, 1150, 12, 24),
        ink=70,
        paper=235,
    )
    h, w = page.image.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1.0 - 0.6 * (xx / w) * (0.5 + 0.5 * yy / h)  # a shadow to one corner: 40 % light
    shaded = (page.image.astype(np.float32) * light).astype(np.uint8)
    layout = analyze_page(shaded)
    assert not layout.inverted
    check(Page(shaded, page.boxes), layout)


def test_noise_specks_make_no_lines() -> None:
    page = one_column(seed=12)
    img = page.image.copy()
    rng = np.random.default_rng(0)
    h, w = img.shape
    for _ in range(400):
        y, x = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 3))
        s = int(rng.integers(1, 4))
        img[y : y + s, x : x + s] = 0
    img = np.clip(img.astype(np.int16) + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    layout = analyze_page(img)
    check(Page(img, page.boxes), layout)


def test_picture_and_rules_are_not_read() -> None:
    rng = random.Random(13)
    lines = column(rng, 60, 40, 900, 3, 24) + column(rng, 60, 560, 900, 3, 24)
    page = render((760, 1020), lines)
    img = page.image.copy()
    noise = np.random.default_rng(1).integers(0, 256, (300, 400))
    img[170:470, 300:700] = np.where(noise > 110, 30, 230).astype(np.uint8)  # a halftone picture
    img[510:513, 60:960] = 0  # a rule
    img[40:500, 20:23] = 0  # a vertical separator
    layout = analyze_page(img)
    check(Page(img, page.boxes), layout)


# --- sizes --------------------------------------------------------------------------------


def test_small_text() -> None:
    page = one_column(size=12, n=12, seed=14)  # about 8 pt at 100 dpi
    layout = analyze_page(page.image)
    check(page, layout, recall=0.9, precision=0.9)


def test_large_text() -> None:
    page = one_column(size=110, n=4, seed=15)
    layout = analyze_page(page.image)
    check(page, layout)


def test_mixed_sizes_heading_and_body() -> None:
    rng = random.Random(16)
    lines = [(60, 30, "Chapter Seven", 72), *column(rng, 60, 150, 1000, 8, 22)]
    page = render((150 + 9 * 42 + 40, 1140), lines)
    check(page, analyze_page(page.image))


def test_lines_that_touch_are_split() -> None:
    rng = random.Random(17)
    size = 26
    # Leading of 1.05 em: descenders run into the ascenders of the next line.
    lines = [
        (40, 40 + round(i * size * 1.05), sentence(rng, 900, size) + " gypsy jig", size)
        for i in range(8)
    ]
    page = render((40 + 9 * size + 40, 1100), lines)
    layout = analyze_page(page.image)
    check(page, layout, recall=0.85, precision=0.85)


def test_high_resolution_page_is_fast_enough() -> None:
    """A 600 dpi A4 page (4960 × 7016) of 10 pt text: analysed at a whole-factor shrink."""
    rng = random.Random(18)
    size = 84  # 10 pt at 600 dpi
    lines = column(rng, 400, 400, 4100, 12, size, leading=2.0)
    page = render((7016, 4960), lines)
    started = time.perf_counter()
    layout = analyze_page(page.image)
    elapsed = time.perf_counter() - started
    check(page, layout)
    assert elapsed < 2.0  # ~0.2 s on one core here; a generous bound for slow CI machines


# --- degenerate input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        np.full((1100, 850), 255, np.uint8),
        np.full((1100, 850), 30, np.uint8),
        np.clip(np.random.default_rng(2).normal(200, 4, (1100, 850)), 0, 255).astype(np.uint8),
        np.zeros((1, 1), np.uint8),
        np.full((3, 7), 128, np.uint8),
        np.full((2, 1000), 255, np.uint8),
        np.full((1000, 2), 0, np.uint8),
    ],
    ids=["white", "black", "noise", "1x1", "3x7", "2x1000", "1000x2"],
)
def test_blank_and_degenerate_pages_give_no_lines(image: np.ndarray) -> None:
    layout = analyze_page(image)
    assert layout.lines == [] and layout.columns == 0


def test_a_single_line_image() -> None:
    page = render((48, 700), [(10, 10, "Just one line of text here", 24)])
    check(page, analyze_page(page.image))


def test_rejects_what_is_not_a_grey_image() -> None:
    with pytest.raises(ValueError):
        analyze_page(np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(ValueError):
        analyze_page(np.zeros((50, 50), np.float32))


def test_config_changes_the_split_gap() -> None:
    size = 24
    page = render((100, 900), [(40, 40, "Amount due", size), (600, 40, "12.50", size)])
    assert len(analyze_page(page.image).lines) == 2
    assert len(analyze_page(page.image, LayoutConfig(split_gap=100.0)).lines) == 1


def test_analysis_stops_between_stages_once_the_page_is_unwanted() -> None:
    """``should_stop`` is asked between the stages; the first True stops the analysis there,
    and a page nobody stops is analysed as without the check."""
    page = one_column()
    asked: list[int] = []

    def never() -> bool:
        asked.append(1)
        return False

    check(page, analyze_page(page.image, should_stop=never))
    stages = len(asked)
    assert stages >= 5  # probe, ink, glyphs, pieces, rows at least

    for stop_at in (1, stages // 2, stages):
        asked.clear()

        def at(n: int = stop_at) -> bool:
            asked.append(1)
            return len(asked) >= n

        with pytest.raises(AnalysisStopped):
            analyze_page(page.image, should_stop=at)
        assert len(asked) == stop_at  # nothing was asked (or done) past the stop
