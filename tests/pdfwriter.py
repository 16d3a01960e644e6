"""The smallest PDF writer the tests need: numbered objects in, a valid file (xref) out.

Shared by the gateway's test documents and the hostile-file corpus, which build their objects
differently (text layers, scans, encryption, JavaScript) but serialize them the same way.
"""

from __future__ import annotations

import io


def pdf_string(text: str) -> bytes:
    """``text`` as a PDF literal string, ``(...)`` with ``\\``, ``(`` and ``)`` escaped."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped})".encode("latin-1")


def serialize(objects: list[bytes], root: int, trailer_extra: bytes = b"") -> bytes:
    """Objects ``1..n`` (``objects[i]`` is object ``i + 1``) with the catalog ``root``."""
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
