"""The gateway's HTTP shell: the kit's app, the API routes, CORS, background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from ..common.health import Health
from ..common.service import create_app
from .docs_ui import install_docs
from .guard import ApiGuard
from .operations import AsyncJobs
from .operations import router as operations_router
from .passthrough import Lane, PassThrough
from .pins import HEADER
from .routes import SUMMARIZE_PATH, router
from .settings import GatewaySettings
from .state import ConfigError, Gateway
from .upstreams import Upstream

#: The service's description in its OpenAPI document.
DESCRIPTION = (
    "Read documents and summarize them. Every /api/v1 route needs an API key "
    f"(X-API-Key or Authorization: Bearer). `{HEADER}: <version>` pins a backend version."
)


def build_app(
    settings: GatewaySettings | None = None, *, upstreams: Mapping[str, Upstream] | None = None
) -> FastAPI:
    """The gateway app; a setting or file that cannot be used stops it here, with why.

    ``upstreams``: the upstreams to call (see :class:`Gateway`); made from the settings when
    None.
    """
    settings = settings or GatewaySettings()
    # httpx logs every call at INFO: one line per upstream call would double the access log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        gateway = Gateway(settings, upstreams)
    except ConfigError as exc:
        raise SystemExit(f"docsum gateway: {exc}") from None
    health = Health(checks=[gateway.readiness])
    jobs = AsyncJobs.configured(settings)  # None without DOCSUM_GATEWAY_REDIS_URL

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        # SIGHUP re-reads the backends and keys files (and no longer stops the process).
        loop.add_signal_handler(signal.SIGHUP, gateway.reload, "SIGHUP")
        tasks = [
            asyncio.create_task(gateway.probe_upstreams(), name="probe-upstreams"),
            asyncio.create_task(gateway.watch_files(), name="watch-files"),
        ]
        if jobs is not None:
            jobs.start()
        health.ready = True  # nothing to load; readiness is the upstreams' (checks)
        try:
            yield
        finally:
            health.draining = True
            if jobs is not None:
                await jobs.aclose()
            loop.remove_signal_handler(signal.SIGHUP)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
            await gateway.aclose()

    app = create_app("docsum API", settings, health, lifespan, description=DESCRIPTION)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", HEADER, "X-Request-ID"],
            expose_headers=["X-Request-ID", HEADER, "Retry-After"],
            max_age=600,
        )
    app.include_router(router)
    # Published in the OpenAPI only where they work (with Redis); elsewhere they answer 503.
    app.include_router(operations_router, include_in_schema=jobs is not None)
    install_docs(app)
    # Inside the kit's request middleware (added first by create_app), before routing: the
    # key check, then the JSON pass-through lane. Both name the request by the API router's
    # own routes (an included router is one opaque route in app.routes).
    api_routes = [*router.routes, *operations_router.routes]
    app.user_middleware.append(Middleware(ApiGuard, gateway=gateway, routes=api_routes))
    summarize = next(r for r in router.routes if getattr(r, "path", "") == "/api/v1/summarize")
    lane = Lane(
        summarize,
        gateway.upstreams["summarizer"],
        SUMMARIZE_PATH,
        max_body_bytes=settings.summarize_max_body_bytes,
        deadline_s=settings.request_timeout_s,
    )
    app.user_middleware.append(Middleware(PassThrough, lanes=[lane]))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.state.gateway = gateway
    app.state.jobs = jobs
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The schema, with the API key schemes and the pin header on every /api route."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "Bearer": {"type": "http", "scheme": "bearer"},
        }
        pin = {
            "name": HEADER,
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "Pin a version: `<version>` or `<upstream>=<version>[,...]`.",
        }
        for path, operations in schema["paths"].items():
            if path.startswith("/api/"):
                for operation in operations.values():
                    operation["security"] = [{"ApiKey": []}, {"Bearer": []}]
                    operation.setdefault("parameters", []).append(pin)
        app.openapi_schema = schema
    return app.openapi_schema
