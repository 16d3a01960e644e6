"""What a file is, by its first bytes: the client's Content-Type and file name are not trusted.

Written once for the gateway (which routes by it) and the OCR service (which decodes by it).
"""

from __future__ import annotations

#: kind → the media type sent upstream.
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
    "webp": "image/webp",
}
IMAGE_KINDS = frozenset({"png", "jpeg", "tiff", "bmp", "webp"})
SUPPORTED = "PDF, PNG, JPEG, TIFF (multi-page too), BMP or WebP"


def sniff(head: bytes) -> str | None:
    """The kind of file ``head`` (its first kilobyte or more) starts, or None if unsupported."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):  # TIFF, BigTIFF
        return "tiff"
    if head.startswith(b"BM") and len(head) >= 26:
        return "bmp"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    # PDF readers accept the header anywhere in the first 1024 bytes (after junk).
    if b"%PDF-" in head[:1024]:
        return "pdf"
    return None
