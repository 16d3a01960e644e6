"""A PDF worker process: one document at a time, read with PDFium on behalf of the gateway.

Run as ``python -m docsum.gateway.pdfworker`` by :mod:`.pdfpool`, which talks to it over its
stdin and stdout. Each message, either way, is a frame: a JSON header and a binary part (the
PDF, a page's image), each preceded by its length (4 bytes, big-endian). JSON, not pickle:
the gateway never unpickles what a process that parses hostile files wrote.

Requests: ``open`` (the PDF in the binary part) → page count and sizes; ``text`` (one page's
text layer, at most ``max_chars``); ``scan`` (the page's embedded JPEG, if it is one);
``render`` (the page as PNG); ``close`` (the document, then the freed memory given back).
An error is answered ``{"error": code, "message": ...}``; the worker goes on.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from typing import Any, BinaryIO

_LENGTH = struct.Struct(">I")


def write_frame(out: BinaryIO, header: dict[str, Any], blob: bytes = b"") -> None:
    """One frame: the JSON ``header``, then ``blob``."""
    head = json.dumps(header, separators=(",", ":")).encode()
    out.write(_LENGTH.pack(len(head)) + head + _LENGTH.pack(len(blob)))
    out.write(blob)
    out.flush()


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError
    return data


def read_frame(stream: BinaryIO) -> tuple[dict[str, Any], bytes]:
    """The next frame's header and binary part; EOFError when the stream ends."""
    (n,) = _LENGTH.unpack(_read_exactly(stream, 4))
    header = json.loads(_read_exactly(stream, n))
    (n,) = _LENGTH.unpack(_read_exactly(stream, 4))
    return header, _read_exactly(stream, n) if n else b""


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer requests until the gateway closes the pipe."""
    from ..common.errors import DocsumError
    from ..common.heap import trim
    from .pdf import PdfDocument, render_png, usable_text

    doc: PdfDocument | None = None
    while True:
        try:
            msg, blob = read_frame(requests)
        except EOFError:
            return
        op = msg.get("op")
        try:
            if op == "open":
                doc = PdfDocument(blob, int(msg["max_pages"]))
                write_frame(answers, {"pages": doc.page_count, "sizes": doc.sizes})
                continue
            if op == "close":
                if doc is not None:
                    doc.close()
                    doc = None
                trim()
                write_frame(answers, {})
                continue
            if doc is None:
                raise RuntimeError(f"{op!r} before 'open'")
            number = int(msg["page"])
            if op == "text":
                text, truncated = doc.page_text(number, int(msg["max_chars"]))
                usable = usable_text(text, int(msg["min_chars"]))
                header = {"text": text.strip() if usable else None, "chars": len(text)}
                write_frame(answers, header | {"truncated": truncated})
            elif op == "scan":
                jpeg = doc.embedded_scan(number, float(msg["min_dpi"]), float(msg["max_dpi"]))
                write_frame(answers, {"found": jpeg is not None}, jpeg or b"")
            elif op == "render":
                png, seconds = render_png(doc, number, int(msg["dpi"]), int(msg["max_pixels"]))
                write_frame(answers, {"seconds": seconds}, png)
            else:
                raise RuntimeError(f"unknown request {op!r}")
        except DocsumError as exc:
            write_frame(answers, {"error": exc.code, "status": exc.status, "message": exc.message})
        except Exception as exc:  # PDFium and Pillow raise many types for broken files
            write_frame(
                answers,
                {
                    "error": "invalid_input",
                    "status": 422,
                    "message": f"the PDF could not be read ({type(exc).__name__}: {exc})",
                },
            )


def main() -> None:
    # The frames go to the original stdout; anything a library prints goes to stderr instead.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
