"""The request middleware every service runs: request id, access log, metrics, body limits.

Written as plain ASGI (not BaseHTTPMiddleware) because it sits on the gateway's hot path,
where the whole overhead budget is a millisecond.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import metrics
from .errors import DocsumError, Overloaded, PayloadTooLarge, RequestTimeout
from .http_errors import error_json
from .logs import new_request_id, request_id_var

log = logging.getLogger("docsum.access")

#: Taken from the request when valid, else made; sent back on the answer (and, by the gateway,
#: upstream).
REQUEST_ID_HEADER = b"x-request-id"
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: Probe and scrape traffic is counted but not logged: it would drown the access log.
_QUIET = frozenset({"/livez", "/readyz", "/metrics"})
#: Set in ``scope["state"]`` by inner code for a request its own tally logs instead (the
#: gateway's failed keys): the access log then has no line for it.
NO_ACCESS_LOG = "docsum.no_access_log"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _too_large(limit: int) -> str:
    return f"request body is over the limit of {limit} bytes; send less or split it"


def _busy(limit: int) -> str:
    return f"the server is serving {limit} requests already; retry in a second"


def _too_slow(seconds: float) -> str:
    return f"the request body did not arrive within {seconds:g} s; send it in one go"


class RequestMiddleware:
    """Take or make ``X-Request-ID``, return it, log one JSON line and count every request.

    Bodies over ``max_body_bytes`` are refused with 413: at once when Content-Length says so,
    or as soon as a chunked body passes the limit. A body still incomplete ``body_timeout_s``
    seconds after the headers is refused with 408 and the connection closed: uvicorn bounds
    no body read, so a client dripping a few bytes a second would hold a connection and a
    request slot forever. Past ``max_in_flight`` requests being served, a new one is answered
    503 at once.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        body_timeout_s: float | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, REQUEST_ID_HEADER)
        rid = given if given and _VALID_ID.fullmatch(given) else new_request_id()
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status = 500
        limit = self.max_body_bytes
        metrics.HTTP_IN_FLIGHT.inc()
        self.in_flight += 1

        started = False
        #: A refusal decided mid-body (413 or 408).
        refused: DocsumError | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                if refused:
                    # The app turned our mid-body refusal into its own error: answer ours.
                    started = True
                    status = refused.status
                    await self._send_error(send, rid, refused, close=True)
                    return
                status = message["status"]
                started = True
                headers = [*message.get("headers", []), (REQUEST_ID_HEADER, rid.encode())]
                message = {**message, "headers": headers}
            elif refused:
                return
            await send(message)

        received = 0
        body_done = False
        body_timeout = self.body_timeout_s
        loop_now = asyncio.get_running_loop().time()
        deadline = None if body_timeout is None else loop_now + body_timeout

        async def receive_wrapper() -> Message:
            nonlocal received, refused, body_done
            if deadline is None or body_done:
                message = await receive()
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    refused = RequestTimeout(_too_slow(body_timeout or 0.0))
                    raise refused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = PayloadTooLarge(_too_large(limit))
                    raise refused
                body_done = not message.get("more_body", False)
            return message

        try:
            length = _header(scope, b"content-length")
            if self.max_in_flight is not None and self.in_flight > self.max_in_flight:
                status = Overloaded.status
                await self._send_error(send, rid, Overloaded(_busy(self.max_in_flight)))
            elif length is not None and length.isdigit() and int(length) > limit:
                status = PayloadTooLarge.status
                await self._send_error(send, rid, PayloadTooLarge(_too_large(limit)))
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except Exception:
            if refused:
                # Our own refusal escaped the app (it read the body outside its handlers).
                status = refused.status
                if not started:
                    await self._send_error(send, rid, refused, close=True)
                return
            log.exception("unhandled error", extra={"path": scope["path"]})
            status = DocsumError.status
            if not started:
                failed = DocsumError("the server failed; the request id helps us find why")
                await self._send_error(send, rid, failed)
        finally:
            elapsed = time.perf_counter() - start
            metrics.HTTP_IN_FLIGHT.dec()
            self.in_flight -= 1
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(template, method, str(status)).inc()
            metrics.HTTP_DURATION.labels(template, method).observe(elapsed)
            state = scope["state"]
            if (scope["path"] not in _QUIET or status >= 400) and not state.get(NO_ACCESS_LOG):
                self._log(scope, status, elapsed)
            request_id_var.reset(token)

    @staticmethod
    async def _send_error(send: Send, rid: str, exc: DocsumError, close: bool = False) -> None:
        body = error_json(exc.code, exc.message)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (REQUEST_ID_HEADER, rid.encode()),
        ]
        headers += [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()
        ]
        if close:  # the rest of the body is never read: the connection cannot be reused
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _log(scope: Scope, status: int, elapsed: float) -> None:
        extra: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
        }
        client = scope.get("client")
        if client:
            extra["client"] = client[0]
        log.info("request", extra=extra)
