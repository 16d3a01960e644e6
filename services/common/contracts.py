"""The bodies the services and the gateway share: ``POST /v1/summarize`` and ``POST /v1/ocr``
(the gateway's ``/api/v1/summarize`` and ``/api/v1/ocr`` forward them as they are) and the
model block of every service's answer.

Only pydantic here: the gateway's image has no torch or numpy.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ModelOut(BaseModel):  # the model that served a request
    name: str
    version: str


class SummarizeRequest(BaseModel):
    # strict: JSON true is not the number 1 (docs/decisions.md, "Strict request models").
    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(description="The document's text (UTF-8). Line-wrapped OCR text is fine.")
    max_sentences: int | None = Field(
        None, ge=1, le=1000, description="At most this many sentences in the summary."
    )
    ratio: float | None = Field(
        None, gt=0, le=1, description="Summary length as a fraction of the document's sentences."
    )


class SentenceOut(BaseModel):
    index: int = Field(description="Position of the sentence in the document, from 0.")
    text: str
    score: float = Field(description="Centrality in [0, 1]; higher is more central.")


class SummarizeResponse(BaseModel):
    summary: str = Field(description="The chosen sentences in document order, space-joined.")
    sentences: list[SentenceOut]
    model: ModelOut


class OCRLineOut(BaseModel):
    text: str
    confidence: float = Field(
        description="The least sure character's probability, in [0, 1] (low: check this line)."
    )
    box: tuple[int, int, int, int] = Field(
        description="x0, y0, x1, y1 in pixels of the uploaded page (after EXIF rotation)."
    )


class OCRPageOut(BaseModel):
    number: int = Field(description="Page number from 1 (TIFF frames are pages).")
    width: int
    height: int
    skew_deg: float = Field(0.0, description="Skew that was corrected before reading, degrees.")
    lines: list[OCRLineOut] = Field(description="Text lines in reading order.")


class OCRResponse(BaseModel):
    text: str = Field(description="All lines, one per line; pages separated by a blank line.")
    pages: list[OCRPageOut]
    model: ModelOut
