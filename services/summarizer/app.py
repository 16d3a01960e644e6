"""The summarizer's HTTP shell: validate, queue for the batcher, answer.

A request waits at most ``request_timeout_s``, or less when the caller's deadline
(``X-Docsum-Deadline``) is closer; a request whose client hangs up leaves the queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request

from ..common.batcher import DynamicBatcher
from ..common.contracts import ModelOut, SentenceOut, SummarizeRequest, SummarizeResponse
from ..common.deadline import DEADLINE_HEADER, budget, cancel_on_disconnect
from ..common.errors import InvalidInput, PayloadTooLarge
from ..common.health import Health
from ..common.service import create_app, model_lifespan
from .settings import SummarizerSettings
from .summarize import Summarizer, Summary, SummaryRequest

#: The service's description in its OpenAPI document.
DESCRIPTION = "Extractive summaries by directed BERT centrality (PacSum) with MMR."


def build_app(settings: SummarizerSettings | None = None) -> FastAPI:
    """The summarizer app; the model loads in the background once the app starts."""
    settings = settings or SummarizerSettings()
    health = Health()
    model = Summarizer(settings)
    batcher: DynamicBatcher[SummaryRequest, Summary] = DynamicBatcher(
        model.name, model.summarize_batch, settings.batch
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with model_lifespan(model, health, [batcher], settings.shutdown_grace_s):
            yield

    app = create_app("docsum summarizer", settings, health, lifespan, description=DESCRIPTION)
    router = APIRouter(prefix="/v1", tags=["summarize"])

    @router.post("/summarize", operation_id="summarize", response_model=SummarizeResponse)
    async def summarize(body: SummarizeRequest, request: Request) -> SummarizeResponse:
        health.require_ready()
        seconds = budget(settings.request_timeout_s, request.headers.get(DEADLINE_HEADER))
        try:
            size = len(body.text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidInput(
                f"text is not valid Unicode: {exc.reason} at character {exc.start}"
            ) from None
        if size > settings.max_text_bytes:
            raise PayloadTooLarge(
                f"text is {size} bytes; the limit is {settings.max_text_bytes} bytes"
            )
        if not body.text.strip():
            raise InvalidInput("text is empty; send the document's text in 'text'")
        queued = batcher.submit(
            SummaryRequest(body.text, body.max_sentences, body.ratio), timeout_s=seconds
        )
        summary = await cancel_on_disconnect(request.receive, queued)
        return SummarizeResponse(
            summary=summary.text,
            sentences=[
                SentenceOut(index=s.index, text=s.text, score=s.score) for s in summary.sentences
            ],
            model=ModelOut(name=model.name, version=model.version),
        )

    app.include_router(router)
    return app
