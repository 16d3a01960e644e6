"""The gateway's own response bodies (the proxied routes answer what the service answers)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class PageOut(BaseModel):
    number: int = Field(description="Page number, from 1.")
    source: Literal["text-layer", "ocr"] = Field(
        description="Where the text came from: the PDF's text layer, or OCR of the page image."
    )
    text: str


class StageError(BaseModel):
    stage: Literal["summarize", "text"] = Field(
        description="The stage that failed: summarize, or text (the text was over its limit "
        "and was cut, code text_truncated)."
    )
    code: str
    message: str
    status: int | None = Field(None, description="The HTTP status that stage got, if any.")
    upstream: str | None = None


class DocumentSummary(BaseModel):
    text: str = Field(description="The document's text, pages separated by a blank line.")
    summary: str | None = Field(
        description="The summary; null when summarizing failed (see errors)."
    )
    pages: list[PageOut]
    timings_ms: dict[str, float] = Field(
        description="Milliseconds per stage: read (receiving and parsing the upload), pages "
        "(text layers, rendering and OCR together), text_layer, render (CPU time summed over "
        "pages), ocr (wall time of the OCR stage), summarize, total."
    )
    backends: dict[str, str] = Field(description="The version of each upstream that served.")
    errors: list[StageError] = Field(
        description="Stages that failed without failing the request (the summary, or the "
        "text cut at its limit)."
    )
