"""The OCR service's response body (the request is a multipart upload)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..common.contracts import ModelOut


class LineOut(BaseModel):
    text: str
    confidence: float = Field(
        description="The least sure character's probability, in [0, 1] (low: check this line)."
    )
    box: tuple[int, int, int, int] = Field(
        description="x0, y0, x1, y1 in pixels of the uploaded page (after EXIF rotation)."
    )


class PageOut(BaseModel):
    number: int = Field(description="Page number from 1 (TIFF frames are pages).")
    width: int
    height: int
    skew_deg: float = Field(0.0, description="Skew that was corrected before reading, degrees.")
    lines: list[LineOut] = Field(description="Text lines in reading order.")


class OCRResponse(BaseModel):
    text: str = Field(description="All lines, one per line; pages separated by a blank line.")
    pages: list[PageOut]
    model: ModelOut
