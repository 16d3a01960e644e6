"""API keys, rate limits and pins for every ``/api/`` request, as plain ASGI middleware.

It runs inside the kit's request middleware (so a refusal is counted and carries the request
id) and before routing: a refused request costs almost nothing, and the key check adds no
dependency to solve on the proxied hot path. Requests without a valid key are throttled per
client address (429 past ``auth_failures_per_client``) and left out of the access log: one
line per 10 s tallies them. A pin of a version that takes no traffic (weight 0) is refused
with 403 unless the key is one of ``pin_any_version_keys``.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..common.errors import DocsumError, Forbidden, RateLimited, Unauthorized
from ..common.http_errors import send_error
from ..common.logs import Tally
from ..common.middleware import NO_ACCESS_LOG
from . import metrics
from .auth import FailureThrottle, presented_key
from .pins import HEADER, parse_pins
from .state import Gateway

log = logging.getLogger(__name__)

PREFIX = "/api/"
_PIN_HEADER = HEADER.lower().encode("latin-1")
_RATELIMIT_LIMIT = b"ratelimit-limit"


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


def _pin_header(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == _PIN_HEADER:
            return str(value.decode("latin-1"))
    return None


class ApiGuard:
    def __init__(self, app: ASGIApp, gateway: Gateway, routes: list[Any] | None = None) -> None:
        self.app = app
        self.gateway = gateway
        self.routes = routes or []
        s = gateway.settings
        self.throttle = FailureThrottle(s.auth_failures_per_client, s.auth_failure_window_s)
        self.failures = Tally(log, "requests without a valid API key")
        self.pin_any_version = frozenset(s.pin_any_version_keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            try:
                caller = self.gateway.admit(presented_key(*_headers(scope)))
            except Unauthorized as exc:
                raise self._failed(scope, exc) from None
            if caller not in self.pin_any_version:
                self._check_pins(_pin_header(scope))
        except DocsumError as exc:
            await self._refuse(scope, send, exc)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, self._with_quota(send, caller))

    def _with_quota(self, send: Send, caller: str) -> Send:
        """``send`` adding the caller's ``RateLimit-*`` headers to the answer (unless it has
        them: a 429 of the page charge carries its own), so clients can pace themselves."""

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name == _RATELIMIT_LIMIT for name, _ in headers):
                    headers += [
                        (k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in self.gateway.limiter.headers(caller).items()
                    ]
                    message = {**message, "headers": headers}
            await send(message)

        return sending

    def _failed(self, scope: Scope, exc: Unauthorized) -> DocsumError:
        """The answer to a request without a valid key: 401, or 429 once its address has
        failed too often; tallied, not logged line by line."""
        client = scope["client"][0] if scope.get("client") else ""
        scope.setdefault("state", {})[NO_ACCESS_LOG] = True
        wait_s = self.throttle.fail(client)
        self.failures.add("throttled" if wait_s else "unauthorized", client)
        if not wait_s:
            return exc
        metrics.AUTH_THROTTLED.inc()
        return RateLimited(
            f"too many requests without a valid API key from this address; retry in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )

    def _check_pins(self, value: str | None) -> None:
        """403 for a pin of a version that takes no traffic (400 for a malformed header)."""
        if value is None:
            return
        pins = parse_pins(value)
        for name, upstream in self.gateway.upstreams.items():
            version = pins.for_upstream(name)
            if version is not None and upstream.routes.takes_no_traffic(version):
                raise Forbidden(
                    f"{HEADER}: version {version!r} of {name} takes no traffic (weight 0); "
                    "only the keys in DOCSUM_GATEWAY_PIN_ANY_VERSION_KEYS may pin it",
                    upstream=name,
                )

    async def _refuse(self, scope: Scope, send: Send, exc: DocsumError) -> None:
        # Name the route for the request metrics (routing has not run yet).
        for route in self.routes:
            if route.matches(scope)[0] is Match.FULL:
                scope["route"] = route
                break
        await send_error(send, exc)
