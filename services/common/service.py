"""Build a docsum FastAPI app and run it: the pieces every service shares.

A model service gives :func:`create_app` its title, settings, health state and lifespan; it
gets back an app with the request middleware, the error table, ``/livez``, ``/readyz`` and
``/metrics``. :func:`serve` runs it under uvicorn, its connections bounded (see
:mod:`.connections`), marking the service as draining the moment SIGTERM arrives so readiness
fails while in-flight requests finish; with ``probe_port`` set, a second listener answers the
probes and the scrape, out of reach of the API port's clients.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import FrameType
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from . import metrics
from .batcher import DynamicBatcher
from .connections import ConnectionLimits, guarded_protocol
from .health import Health, health_router, probe_app
from .http_errors import ERROR_RESPONSES, install_error_handlers
from .middleware import RequestMiddleware
from .settings import ServiceSettings
from .version import VERSION

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
    title: str,
    settings: ServiceSettings,
    health: Health,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    *,
    description: str = "",
    version: str = VERSION,
) -> FastAPI:
    """A FastAPI app with the kit installed; the caller adds its routers."""
    app = FastAPI(
        title=title,
        # A trailing slash is a 404, not a redirect built from the Host header.
        redirect_slashes=False,
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
        max_in_flight=settings.max_concurrency,
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


class _Server(uvicorn.Server):
    """uvicorn, but readiness fails as soon as a stop signal arrives, and the probe listener
    (when there is one) runs beside the API's: started first, stopped last."""

    def __init__(self, config: uvicorn.Config, health: Health, probe: uvicorn.Server | None):
        super().__init__(config)
        self.health = health
        self.probe = probe

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.health.draining:
            log.info("stop signal received; draining", extra={"signal": sig})
        self.health.draining = True
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if self.probe is not None:
            self.probe.config.load()
            self.probe.lifespan = self.probe.config.lifespan_class(self.probe.config)
            await self.probe.startup()
        await super().startup(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().shutdown(sockets)
        finally:
            if self.probe is not None and self.probe.started:
                await self.probe.shutdown()


#: Open files kept for what is not a client connection: upstream calls, logs, model files.
_SPARE_FILES = 256
#: Connections the probe listener holds at once (the kubelet and Prometheus need a few).
_PROBE_CONNECTIONS = 64


def _connection_cap(wanted: int) -> int:
    """``wanted``, or as many connections as the open-files limit leaves room for once its
    soft value is raised as far as the hard one allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + _SPARE_FILES + _PROBE_CONNECTIONS
    if soft != resource.RLIM_INFINITY and soft < need:
        raised = need if hard == resource.RLIM_INFINITY else min(hard, need)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted
    cap = max(1, soft - _SPARE_FILES - _PROBE_CONNECTIONS)
    log.warning(
        "open-files limit too low for max_connections; fewer connections are kept",
        extra={"max_connections": wanted, "kept": cap, "open_files_limit": soft},
    )
    return cap


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run ``app`` until SIGINT/SIGTERM, then finish in-flight requests and stop; the probe
    listener beside it when ``settings.probe_port`` is set."""
    health: Health = app.state.health
    public_limits = ConnectionLimits(
        "public", _connection_cap(settings.max_connections), settings.max_connections_per_client
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # The protocol uvicorn would pick (httptools when installed, else h11), bounded.
        http=guarded_protocol(
            AutoHTTPProtocol, public_limits, settings.header_timeout_s, settings.write_timeout_s
        ),
        log_config=None,
        access_log=False,
        timeout_keep_alive=int(settings.header_timeout_s) + 1,
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        lifespan="on",
    )
    probe = None
    if settings.probe_port is not None:
        probe_limits = ConnectionLimits("probe", _PROBE_CONNECTIONS)
        probe = uvicorn.Server(
            uvicorn.Config(
                probe_app(health),
                host=settings.host,
                port=settings.probe_port,
                http=guarded_protocol(
                    AutoHTTPProtocol,
                    probe_limits,
                    settings.header_timeout_s,
                    settings.write_timeout_s,
                ),
                log_config=None,
                access_log=False,
                proxy_headers=False,
                timeout_graceful_shutdown=1,
                lifespan="off",
            )
        )
    _Server(config, health, probe).run()
