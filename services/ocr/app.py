"""The OCR service's HTTP shell: take an upload, cut pages into lines, batch the lines, answer.

A request's cost is checked from the file's headers before anything is decoded; then its
pages are decoded, cut and read ``page_concurrency`` at a time, each page's lines queued in
turns, all of them one flow of the batcher (which shares each forward pass evenly among the
requests waiting). The request's time is the tighter of ``request_timeout_s`` and the
caller's deadline (``X-Docsum-Deadline``); when it runs out, or the client hangs up, the work
stops: its lines still queued leave the queue, and a page being analysed stops at its next
stage.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Literal, TypeVar

import numpy as np
from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile

from ..common.batcher import DynamicBatcher
from ..common.contracts import ModelOut, OCRLineOut, OCRPageOut, OCRResponse
from ..common.deadline import DEADLINE_HEADER, budget, cancel_on_disconnect, within
from ..common.errors import InvalidInput
from ..common.health import Health
from ..common.heap import IdleTrim
from ..common.metrics import stage_timer
from ..common.service import create_app, model_lifespan
from .engine import OCREngine, Page, PageCrops, by_width, document_text
from .gpu import register_gpu_metrics
from .intake import Limits, Plan, decode_page, plan_pages
from .model.ctc import Decoded
from .settings import OCRSettings

#: The service's description in its OpenAPI document.
DESCRIPTION = "Text-line detection (OpenCV) and a CRNN line recognizer (CTC), batched."

T = TypeVar("T")
Mode = Literal["page", "line"]


async def _all(aws: Sequence[Awaitable[T]]) -> list[T]:
    """Await all; on the first failure cancel the rest (their queued lines leave the queue)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def build_app(settings: OCRSettings | None = None) -> FastAPI:
    """The OCR app; the model loads in the background once the app starts."""
    settings = settings or OCRSettings()
    health = Health()
    engine = OCREngine(settings)
    idle_trim = IdleTrim(settings.trim_idle_s)

    def recognize(crops: list[np.ndarray]) -> list[Decoded | Exception]:
        try:
            return engine.recognize(crops)
        finally:
            idle_trim.done_in_thread()

    def cut_page(page: np.ndarray, number: int, mode: Mode, stop: threading.Event) -> PageCrops:
        try:
            return engine.cut(page, number, mode, stop.is_set)
        finally:
            idle_trim.done_in_thread()  # also when its request has gone meanwhile

    # One call, one forward pass: a caller's wait ends with the pass that reads its last line.
    passes = settings.batch.model_copy(update={"max_batch_size": engine.recognizer.forward_batch})
    batcher: DynamicBatcher[np.ndarray, Decoded] = DynamicBatcher(engine.name, recognize, passes)
    layout_pool = ThreadPoolExecutor(settings.layout_workers, thread_name_prefix="layout")
    limits = Limits(
        settings.max_pixels, settings.max_side, settings.max_pages, settings.max_total_pixels
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        register_gpu_metrics()
        try:
            async with model_lifespan(engine, health, [batcher], settings.shutdown_grace_s):
                yield
        finally:
            layout_pool.shutdown(wait=False, cancel_futures=True)

    app = create_app("docsum OCR", settings, health, lifespan, description=DESCRIPTION)
    router = APIRouter(prefix="/v1", tags=["ocr"])

    async def read_lines(crops: list[np.ndarray], stop: threading.Event) -> list[Decoded]:
        """Read a page's crops, narrowest first, queued ``lines_per_turn`` at a time with the
        next turn waiting behind the one being read, so that passes stay full and each pads
        little; ``stop`` is the request's flow."""
        order = by_width(crops)
        turn = settings.lines_per_turn
        queued = asyncio.Semaphore(2)

        async def one(start: int) -> list[Decoded]:
            async with queued:
                part = [crops[i] for i in order[start : start + turn]]
                return await batcher.submit_all(part, flow=stop)

        readings: list[Decoded | None] = [None] * len(crops)
        done = await _all([one(start) for start in range(0, len(crops), turn)])
        for i, reading in zip(order, (r for part in done for r in part), strict=True):
            readings[i] = reading
        return [r for r in readings if r is not None]

    async def read_page(
        data: bytes, plan: Plan, index: int, mode: Mode, stop: threading.Event
    ) -> Page:
        """Decode, cut and read one page."""
        loop = asyncio.get_running_loop()
        with stage_timer(engine.name, "decode"):
            page = await asyncio.to_thread(decode_page, data, plan, index)
        if mode == "line":  # no page analysis: nothing to wait for a layout worker for
            cut = engine.cut(page, index + 1, mode)
        else:
            cut = await loop.run_in_executor(layout_pool, cut_page, page, index + 1, mode, stop)
        del page  # the crops are all this page needs from here on
        if len(cut.crops) > settings.max_lines_per_page:
            raise InvalidInput(
                f"page {index + 1} has {len(cut.crops):,} text lines; at most "
                f"{settings.max_lines_per_page:,} are read per page (is it a drawing, or noise?)",
                limit="max_lines_per_page",
                allowed=settings.max_lines_per_page,
                requested=len(cut.crops),
            )
        return cut.assemble(await read_lines([c.image for c in cut.crops], stop))

    async def read(data: bytes, mode: Mode, seconds: float) -> list[Page]:
        # Set when the request ends early: a page being analysed stops at its next stage.
        # Also the request's flow in the batcher: its pages share one fair share of a pass.
        stop = threading.Event()
        try:
            async with within(seconds, "OCR"):
                plan = await asyncio.to_thread(plan_pages, data, limits)
                turns = asyncio.Semaphore(settings.page_concurrency)

                async def in_turn(index: int) -> Page:
                    async with turns:
                        return await read_page(data, plan, index, mode, stop)

                return await _all([in_turn(i) for i in range(len(plan.sizes))])
        except BaseException:
            stop.set()
            raise

    @router.post("/ocr", operation_id="ocr", response_model=OCRResponse)
    async def ocr(
        request: Request,
        file: Annotated[
            UploadFile, File(description="A PNG, JPEG, TIFF (every frame a page), BMP or WebP.")
        ],
        mode: Annotated[
            Mode,
            Form(description="page: find the text lines; line: the image is one text line."),
        ] = "page",
    ) -> OCRResponse:
        health.require_ready()
        seconds = budget(settings.request_timeout_s, request.headers.get(DEADLINE_HEADER))
        data = await file.read()
        try:
            done = await cancel_on_disconnect(request.receive, read(data, mode, seconds))
        finally:
            idle_trim.done()
        return OCRResponse(
            text=document_text(done),
            pages=[
                OCRPageOut(
                    number=p.number,
                    width=p.width,
                    height=p.height,
                    skew_deg=p.skew_deg,
                    lines=[
                        OCRLineOut(text=ln.text, confidence=ln.confidence, box=ln.box)
                        for ln in p.lines
                    ],
                )
                for p in done
            ],
            model=ModelOut(name=engine.name, version=engine.version),
        )

    app.include_router(router)
    return app
