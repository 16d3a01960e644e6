"""The OCR service's HTTP shell: take an upload, cut pages into lines, batch the lines, answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Literal, TypeVar

import numpy as np
from fastapi import APIRouter, FastAPI, File, Form, UploadFile

from ..common.batcher import DynamicBatcher
from ..common.contracts import ModelOut
from ..common.errors import Timeout
from ..common.health import Health
from ..common.metrics import stage_timer
from ..common.service import create_app, model_lifespan
from ..common.version import VERSION
from .engine import OCREngine, Page, PageCrops, document_text
from .gpu import register_gpu_metrics
from .intake import Limits, decode_pages
from .model.ctc import Decoded
from .schemas import LineOut, OCRResponse, PageOut
from .settings import OCRSettings

T = TypeVar("T")


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
    batcher: DynamicBatcher[np.ndarray, Decoded] = DynamicBatcher(
        engine.name, engine.recognize, settings.batch
    )
    layout_pool = ThreadPoolExecutor(settings.layout_workers, thread_name_prefix="layout")
    limits = Limits(settings.max_pixels, settings.max_side, settings.max_pages)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        register_gpu_metrics()
        try:
            async with model_lifespan(engine, health, [batcher], settings.shutdown_grace_s):
                yield
        finally:
            layout_pool.shutdown(wait=False, cancel_futures=True)

    app = create_app(
        title="docsum OCR",
        version=VERSION,
        description="Text-line detection (OpenCV) and a CRNN line recognizer (CTC), batched.",
        settings=settings,
        health=health,
        lifespan=lifespan,
    )
    router = APIRouter(prefix="/v1", tags=["ocr"])

    async def read_page(page: np.ndarray, number: int, mode: Literal["page", "line"]) -> Page:
        loop = asyncio.get_running_loop()
        cut: PageCrops = await loop.run_in_executor(layout_pool, engine.cut, page, number, mode)
        readings = await batcher.submit_all(
            [c.image for c in cut.crops], timeout_s=settings.request_timeout_s
        )
        return cut.assemble(readings)

    @router.post("/ocr", operation_id="ocr", response_model=OCRResponse)
    async def ocr(
        file: Annotated[
            UploadFile, File(description="A PNG, JPEG, TIFF (every frame a page), BMP or WebP.")
        ],
        mode: Annotated[
            Literal["page", "line"],
            Form(description="page: find the text lines; line: the image is one text line."),
        ] = "page",
    ) -> OCRResponse:
        health.require_ready()
        data = await file.read()
        turns = asyncio.Semaphore(settings.page_concurrency)

        async def in_turn(page: np.ndarray, number: int) -> Page:
            async with turns:
                return await read_page(page, number, mode)

        try:
            async with asyncio.timeout(settings.request_timeout_s):
                with stage_timer(engine.name, "decode"):
                    pages = await asyncio.to_thread(decode_pages, data, limits)
                done = await _all([in_turn(p, i + 1) for i, p in enumerate(pages)])
        except TimeoutError:
            raise Timeout(f"OCR did not finish within {settings.request_timeout_s:g} s") from None
        return OCRResponse(
            text=document_text(done),
            pages=[
                PageOut(
                    number=p.number,
                    width=p.width,
                    height=p.height,
                    skew_deg=p.skew_deg,
                    lines=[
                        LineOut(text=ln.text, confidence=ln.confidence, box=ln.box)
                        for ln in p.lines
                    ],
                )
                for p in done
            ],
            model=ModelOut(name=engine.name, version=engine.version),
        )

    app.include_router(router)
    return app
