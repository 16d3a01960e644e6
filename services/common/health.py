"""Liveness, readiness and the metrics endpoint.

``/livez`` says the process works (only a failed model load makes it fail, so Kubernetes
restarts the pod). ``/readyz`` says it should get traffic: 503 until the model is loaded and
warmed up, 503 again while draining after SIGTERM, and 503 when an extra check (the gateway's
upstreams) fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .errors import ModelNotReady, ShuttingDown

#: An extra readiness check: returns None when fine, else a reason.
ReadinessCheck = Callable[[], Awaitable[str | None]]


@dataclass
class Health:
    """The state the probes report."""

    ready: bool = False
    draining: bool = False
    failed: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    checks: list[ReadinessCheck] = field(default_factory=list)

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
        if reasons:
            return False, {"status": "degraded", "reasons": reasons}
        return True, {"status": "ready", **self.detail}


def health_router(health: Health) -> APIRouter:
    """/livez, /readyz and /metrics, kept out of the OpenAPI schema."""
    router = APIRouter(include_in_schema=False)

    @router.get("/livez")
    async def livez() -> JSONResponse:
        if health.failed:
            return JSONResponse({"status": "failed", "reason": health.failed}, status_code=500)
        return JSONResponse({"status": "alive"})

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        ok, body = await health.readiness()
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
