"""API keys and rate limits for every ``/api/`` request, as plain ASGI middleware.

It runs inside the kit's request middleware (so a 401 or 429 is counted, logged and carries
the request id) and before routing: a refused request costs almost nothing, and the key check
adds no dependency to solve on the proxied hot path.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ..common.errors import DocsumError
from ..common.http_errors import send_error
from .auth import presented_key
from .state import Gateway

PREFIX = "/api/"


def _headers(scope: Scope) -> tuple[str | None, str | None]:
    key = bearer = None
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            key = value.decode("latin-1")
        elif name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer":
                bearer = token
    return key, bearer


class ApiGuard:
    def __init__(self, app: ASGIApp, gateway: Gateway, routes: list[Any] | None = None) -> None:
        self.app = app
        self.gateway = gateway
        self.routes = routes or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            caller = self.gateway.admit(presented_key(*_headers(scope)))
        except DocsumError as exc:
            await self._refuse(scope, send, exc)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, exc: DocsumError) -> None:
        # Name the route for the request metrics (routing has not run yet).
        for route in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                scope["route"] = route
                break
        await send_error(send, exc)
