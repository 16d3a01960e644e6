"""Build a docsum FastAPI app and run it: the pieces every service shares.

A model service gives :func:`create_app` its title, settings, health state and lifespan; it
gets back an app with the request middleware, the error table, ``/livez``, ``/readyz`` and
``/metrics``. :func:`serve` runs it under uvicorn, marking the service as draining the moment
SIGTERM arrives so readiness fails while in-flight requests finish.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import FrameType
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from . import metrics
from .batcher import DynamicBatcher
from .health import Health, health_router
from .http_errors import ERROR_RESPONSES, install_error_handlers
from .middleware import RequestMiddleware
from .settings import ServiceSettings

log = logging.getLogger(__name__)


class LoadableModel(Protocol):
    """What the kit needs of a model: a name, a version, a device, load and warm up."""

    name: str

    @property
    def version(self) -> str: ...

    @property
    def device(self) -> str: ...

    def load(self) -> None: ...

    def warmup(self) -> None: ...


def create_app(
    *,
    title: str,
    version: str,
    settings: ServiceSettings,
    health: Health,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    description: str = "",
) -> FastAPI:
    """A FastAPI app with the kit installed; the caller adds its routers."""
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        telemetry={
            "tracing": settings.opentelemetry,
            "metrics": settings.opentelemetry,
            "logs": settings.opentelemetry,
        },
    )
    install_error_handlers(app)
    app.add_middleware(
        RequestMiddleware,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
    )
    app.include_router(health_router(health))
    app.state.health = health
    app.state.settings = settings
    return app


async def load_model(
    model: LoadableModel,
    health: Health,
    run: Callable[[Callable[[], None]], Awaitable[None]],
) -> None:
    """Load and warm ``model`` off the event loop (through ``run``: the thread its batches
    will run on, see :meth:`DynamicBatcher.run_in_model_thread`), then mark it ready.

    /livez keeps answering meanwhile; a failure is recorded so /livez fails and the pod is
    restarted, with the reason in the log and in the probe's body.
    """
    health.detail = {"model": model.name, "version": model.version}
    try:
        await run(model.load)
        await run(model.warmup)
    except Exception as exc:
        health.failed = f"model {model.name} failed to load: {exc}"
        log.exception("model load failed", extra={"model": model.name})
        return
    metrics.MODEL_INFO.labels(model.name, model.version, model.device).set(1)
    health.detail["device"] = model.device
    health.ready = True
    log.info("model ready", extra={"model": model.name, "device": model.device})


@asynccontextmanager
async def model_lifespan(
    model: LoadableModel,
    health: Health,
    batchers: list[DynamicBatcher[Any, Any]],
    drain_timeout_s: float,
) -> AsyncIterator[None]:
    """Start the batchers, load the model in the background (on the first batcher's thread,
    where its batches run); on the way out, drain."""
    for batcher in batchers:
        batcher.start()
    run = batchers[0].run_in_model_thread if batchers else asyncio.to_thread
    loading = asyncio.create_task(load_model(model, health, run))
    try:
        yield
    finally:
        health.draining = True
        loading.cancel()
        await asyncio.gather(loading, return_exceptions=True)
        for batcher in batchers:
            await batcher.close(drain_timeout_s)


class _DrainingServer(uvicorn.Server):
    """uvicorn, but readiness fails as soon as a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, health: Health) -> None:
        super().__init__(config)
        self.health = health

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.health.draining:
            log.info("stop signal received; draining", extra={"signal": sig})
        self.health.draining = True
        super().handle_exit(sig, frame)


class _HeaderDeadline:
    """A deadline on each request's headers, mixed into the uvicorn protocol in use.

    uvicorn arms a timer only between requests, and any byte received disarms it: a client
    sending its headers a byte at a time would hold the connection forever (slowloris).
    ``header_timeout_s`` seconds after the connection opens or a response ends, a connection
    with no request being served (its next head still incomplete) is closed.
    """

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    # Provided by uvicorn's protocol classes (h11 and httptools alike).
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_deadline)

    def _header_deadline(self) -> None:
        # A cycle exists (and is not complete) once a request's head has been parsed.
        serving = self.cycle is not None and not self.cycle.response_complete
        if not serving and not self.transport.is_closing():
            log.info("request headers not received in time; closing the connection")
            self.transport.close()


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run ``app`` until SIGINT/SIGTERM, then finish in-flight requests and stop."""
    # The protocol uvicorn would pick (httptools when installed, else h11), with the deadline.
    protocol = type(
        "HeaderDeadlineProtocol",
        (_HeaderDeadline, AutoHTTPProtocol),
        {"header_timeout_s": settings.header_timeout_s},
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        limit_concurrency=settings.max_concurrency,
        lifespan="on",
    )
    _DrainingServer(config, app.state.health).run()
