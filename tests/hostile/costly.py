"""Files that are cheap to send and expensive to serve (issue 21's cost rows), made in code.

Each is a few KB to a few hundred KB on the wire and would cost seconds of CPU and gigabytes
of memory if it were served naively: every frame of a TIFF decoded up front, a PDF's text
layer of ten million characters, thousands of "text lines" that are rectangles, a page tree
that promises pages it does not have, a JSON body of a million keys.
"""

from __future__ import annotations

import io
import json
import random
import struct
import zlib
from functools import cache

from PIL import Image

from tests.support.documents import serialize


def _tiff_strips(img: Image.Image, compression: str) -> tuple[bytes, list[int], list[int], int]:
    """One frame written by Pillow: its file, strip offsets, strip byte counts and
    photometric interpretation."""
    buf = io.BytesIO()
    img.save(buf, "TIFF", compression=compression)
    frame = Image.open(io.BytesIO(buf.getvalue()))
    tags = frame.tag_v2
    return buf.getvalue(), list(tags[273]), list(tags[279]), int(tags[262])


@cache
def group4_tiff(frames: int = 50, side: int = 7745) -> bytes:
    """A TIFF of ``frames`` blank bilevel (CCITT Group 4) pages of ``side`` × ``side`` px.

    Every page is 60 megapixels (just under the OCR service's per-page limit); all of them
    point to one compressed image, so the file is tens of KB however many pages it claims:
    50 pages are 3 gigapixels, 3 GB once decoded to grey.
    """
    data, offsets, counts, photometric = _tiff_strips(Image.new("1", (side, side), 1), "group4")
    out = bytearray(b"II*\x00\x00\x00\x00\x00")  # the first IFD's offset is filled in below
    strips_at = []
    for offset, n in zip(offsets, counts, strict=True):
        strips_at.append(len(out))
        out += data[offset : offset + n]
    rows_per_strip = -(-side // len(counts))

    def entry(tag: int, kind: int, count: int, value: int) -> bytes:
        return struct.pack("<HHII", tag, kind, count, value)

    previous_link = 4  # where the offset of the next IFD goes
    for _ in range(frames):
        # Each IFD has arrays of its own (Pillow refuses tag data shared past the file's size).
        offsets_at = len(out)
        out += struct.pack(f"<{len(counts)}I", *strips_at)
        counts_at = len(out)
        out += struct.pack(f"<{len(counts)}I", *counts)
        struct.pack_into("<I", out, previous_link, len(out))
        entries = [
            entry(256, 4, 1, side),  # ImageWidth
            entry(257, 4, 1, side),  # ImageLength
            entry(258, 3, 1, 1),  # BitsPerSample
            entry(259, 3, 1, 4),  # Compression: CCITT Group 4
            entry(262, 3, 1, photometric),
            entry(273, 4, len(counts), offsets_at if len(counts) > 1 else strips_at[0]),
            entry(277, 3, 1, 1),  # SamplesPerPixel
            entry(278, 4, 1, rows_per_strip),
            entry(279, 4, len(counts), counts_at if len(counts) > 1 else counts[0]),
        ]
        out += struct.pack("<H", len(entries)) + b"".join(entries)
        previous_link = len(out)
        out += struct.pack("<I", 0)
    return bytes(out)


def _pdf(page_streams: list[bytes], *, count: int | None = None, font: bool = False) -> bytes:
    """A PDF of one Letter page per content stream (Flate-compressed); ``count`` overrides the
    page tree's /Count (a lie about how many pages there are)."""
    objects: list[bytes] = [b"", b""]
    resources = b""
    if font:
        objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
        resources = f"/Resources << /Font << /F1 {len(objects)} 0 R >> >> ".encode()
    kids = []
    for stream in page_streams:
        packed = zlib.compress(stream, 9)
        objects.append(
            f"<< /Length {len(packed)} /Filter /FlateDecode >>\nstream\n".encode()
            + packed
            + b"\nendstream"
        )
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            + resources
            + f"/Contents {len(objects)} 0 R >>".encode()
        )
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = (
        f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] "
        f"/Count {len(kids) if count is None else count} >>"
    ).encode()
    return serialize(objects, 1)


@cache
def big_text_layer_pdf(chars: int = 10_000_000, per_line: int = 100) -> bytes:
    """One page whose text layer holds ``chars`` characters (about 30 KB on the wire):
    building PDFium's text page for it takes seconds and over a gigabyte."""
    line = b"(" + b"A" * per_line + b") Tj T*\n"
    stream = b"BT /F1 1 Tf 1 TL 0 780 Td\n" + line * (chars // per_line) + b"ET"
    return _pdf([stream], font=True)


@cache
def rectangles_pdf(pages: int = 3, rectangles: int = 20_000, seed: int = 21) -> bytes:
    """Pages of small filled rectangles and no text layer: each page is rendered and sent to
    OCR, where page analysis finds hundreds of "text lines" in it (~150 KB a page)."""
    rng = random.Random(seed)
    streams = []
    for _ in range(pages):
        ops = [b"0 g"]
        for _ in range(rectangles):
            x, y = rng.uniform(36, 570), rng.uniform(36, 750)
            w, h = rng.uniform(1, 6), rng.uniform(1, 4)
            ops.append(f"{x:.1f} {y:.1f} {w:.1f} {h:.1f} re f".encode())
        streams.append(b"\n".join(ops))
    return _pdf(streams)


@cache
def lying_count_pdf(claimed: int = 100) -> bytes:
    """A PDF whose page tree says /Count ``claimed`` but holds one page object."""
    return _pdf(
        [b"BT /F1 11 Tf 72 720 Td (The only page there is.) Tj ET"], count=claimed, font=True
    )


@cache
def many_keys_json(size: int = 8_900_000) -> bytes:
    """A summarize body with a short text and ~``size`` bytes of extra keys (~900k of them):
    every key is a validation error to build."""
    keys = {}
    total = 0
    i = 0
    while total < size:
        key = f"k{i}"
        keys[key] = 1
        total += len(key) + 6
        i += 1
    return json.dumps({"text": "A short text.", **keys}).encode()
