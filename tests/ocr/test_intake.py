"""Intake: formats, orientation, colour, limits (before decoding) and clear errors."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from docsum.common.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from docsum.ocr.intake import Limits, decode_pages, sniff
from tests.support.documents import encode, line_image


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "BMP", "WEBP"])
def test_every_format_decodes_to_grey(fmt: str) -> None:
    img = line_image("Hello 42").convert("RGB")
    [page] = decode_pages(encode(img, fmt))
    assert page.dtype == np.uint8 and page.shape == (img.height, img.width)
    assert page.min() < 80 and page.max() > 200  # ink and paper survived


def test_multi_page_tiff_gives_every_page() -> None:
    pages = [line_image(t) for t in ("one", "two words", "three of them")]
    out = decode_pages(encode(pages, "TIFF", compression="tiff_lzw"))
    assert [p.shape[1] for p in out] == [p.width for p in pages]


def test_exif_orientation_is_applied() -> None:
    img = line_image("rotated").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; viewers rotate 90° clockwise
    [page] = decode_pages(encode(img, "JPEG", exif=exif.tobytes()))
    assert page.shape == (img.width, img.height)


def test_transparent_palette_16bit_and_bilevel_images() -> None:
    rgba = Image.new("RGBA", (60, 20), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (10, 5, 50, 15))
    [page] = decode_pages(encode(rgba, "PNG"))
    assert page[0, 0] == 255 and page[10, 30] == 0  # transparent → white, ink stays dark
    deep = Image.fromarray((np.arange(60 * 20).reshape(20, 60) * 50).astype(np.uint16))
    assert decode_pages(encode(deep, "PNG"))[0].dtype == np.uint8
    [bilevel] = decode_pages(encode(line_image("ink").convert("1"), "PNG"))
    assert set(np.unique(bilevel)) <= {0, 255}
    [pal] = decode_pages(encode(line_image("pal").convert("P"), "PNG"))
    assert pal.ndim == 2


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = encode(Image.new("1", (19_000, 19_000), 1), "PNG")
    assert len(bomb) < 200_000  # small on the wire ...
    started = time.perf_counter()
    with pytest.raises(PayloadTooLarge, match="361,000,000 pixels"):  # ... huge in memory
        decode_pages(bomb)
    assert time.perf_counter() - started < 0.5  # refused from the header alone


def test_limits_on_side_and_pages() -> None:
    with pytest.raises(PayloadTooLarge, match="longest side"):
        decode_pages(encode(Image.new("L", (5000, 1), 255), "PNG"), Limits(max_side=4000))
    three = encode([line_image("p")] * 3, "TIFF")
    with pytest.raises(PayloadTooLarge, match="more than 2 pages"):
        decode_pages(three, Limits(max_pages=2))


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", InvalidInput, "empty"),
        (b"GIF89a" + b"\0" * 20, UnsupportedMediaType, "GIF"),
        (b"%PDF-1.7\n", UnsupportedMediaType, "documents:summarize"),
        (b"hello, world", UnsupportedMediaType, "not an image"),
    ],
)
def test_unsupported_or_empty_files_say_why(data: bytes, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        decode_pages(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "WEBP"])
def test_truncated_files_are_invalid_not_a_crash(fmt: str) -> None:
    data = encode(line_image("truncated file").convert("RGB"), fmt)
    with pytest.raises(InvalidInput, match=r"corrupt|could not be read"):
        decode_pages(data[: len(data) // 2])


def test_format_comes_from_the_bytes() -> None:
    assert sniff(encode(line_image("x"), "PNG")) == "png"
    assert sniff(io.BytesIO(encode(line_image("x"), "WEBP")).getvalue()) == "webp"
