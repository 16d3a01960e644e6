"""Liveness, readiness and the metrics endpoint.

``/livez`` says the process works (only a failed model load makes it fail, so Kubernetes
restarts the pod). ``/readyz`` says it should get traffic: 503 until the model is loaded and
warmed up, 503 again while draining after SIGTERM, and 503 when an extra check (the gateway's
upstreams) fails.

The API port's bodies say only the status: the reasons can name internal addresses (the
gateway's backends). They are given on the probe port (:func:`probe_app`, not reachable
from outside the cluster) and logged when they change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Receive, Scope, Send

from .errors import ModelNotReady, ShuttingDown

log = logging.getLogger(__name__)

#: An extra readiness check: returns None when fine, else a reason.
ReadinessCheck = Callable[[], Awaitable[str | None]]
#: What the API port's bodies keep: no reasons (they can name internal addresses).
_PUBLIC_KEYS = ("status", "model", "version", "device")


@dataclass
class Health:
    """The state the probes report."""

    ready: bool = False
    draining: bool = False
    failed: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    checks: list[ReadinessCheck] = field(default_factory=list)
    _last_reasons: list[str] = field(default_factory=list, init=False, repr=False)

    def require_ready(self) -> None:
        """Raise the 503 a request gets while the model loads or the service drains."""
        if self.draining:
            raise ShuttingDown("the service is shutting down; retry on another replica")
        if not self.ready:
            raise ModelNotReady(
                "the model is still loading; retry in a few seconds",
                headers={"Retry-After": "2"},
            )

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether to send traffic here, and why not."""
        if self.failed:
            return False, {"status": "failed", "reason": self.failed}
        if self.draining:
            return False, {"status": "draining"}
        if not self.ready:
            return False, {"status": "loading", **self.detail}
        reasons = [r for r in [await check() for check in self.checks] if r]
        if reasons != self._last_reasons:
            self._last_reasons = reasons
            if reasons:
                log.warning("not ready", extra={"reasons": reasons})
            else:
                log.info("ready again")
        if reasons:
            return False, {"status": "degraded", "reasons": reasons}
        return True, {"status": "ready", **self.detail}

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """Whether the process works (False only after a failed model load), and why not."""
        if self.failed:
            return False, {"status": "failed", "reason": self.failed}
        return True, {"status": "alive"}


def _public(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in _PUBLIC_KEYS if k in body}


def health_router(health: Health) -> APIRouter:
    """/livez, /readyz and /metrics on the API port, kept out of the OpenAPI schema; the
    bodies say the status only."""
    router = APIRouter(include_in_schema=False)

    @router.get("/livez")
    async def livez() -> JSONResponse:
        ok, body = health.liveness()
        return JSONResponse(_public(body), status_code=200 if ok else 500)

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        ok, body = await health.readiness()
        return JSONResponse(_public(body), status_code=200 if ok else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def probe_app(health: Health) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The probe port's app, in plain ASGI: GET ``/livez``, ``/readyz`` (with the reasons)
    and ``/metrics``; 404 for anything else."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, status = scope["path"], 200
        content_type = b"application/json"
        if scope["method"] not in ("GET", "HEAD"):
            status, body = 405, b'{"status": "method not allowed"}'
        elif path == "/livez":
            ok, doc = health.liveness()
            status, body = (200 if ok else 500), json.dumps(doc).encode()
        elif path == "/readyz":
            ok, doc = await health.readiness()
            status, body = (200 if ok else 503), json.dumps(doc).encode()
        elif path == "/metrics":
            body, content_type = generate_latest(), CONTENT_TYPE_LATEST.encode()
        else:
            status, body = 404, b'{"status": "not found: /livez, /readyz, /metrics"}'
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})  # uvicorn drops it for HEAD

    return app
