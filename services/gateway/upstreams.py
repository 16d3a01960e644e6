"""A call to an upstream service (ocr, summarizer): attempts, retries, circuits, answers.

A call takes the version and endpoint its :class:`~.routing.Router` chooses and sends through
its :class:`~.transport.Transport`. Connection errors and 503s are retried with jittered
backoff on another endpoint; every attempt's outcome feeds that endpoint's circuit breaker.
An upstream's endpoints are the addresses of its backend URLs' hosts (``endpoints.py``: one per
pod behind a headless Service), resolved again every ``resolve_interval_s`` from its first
readiness probe on, and at once, in the background, after a connection error.
What cannot be served becomes a 502/503/504 naming the upstream; answers below 500 (the
client's own errors among them) are returned as they are. Inside a request with a deadline
(``common/deadline.py``) every attempt gets at most what is left of it, and the backend is
told as ``X-Docsum-Deadline``; an attempt cut short by the request's own deadline says nothing
about the backend's health, so it does not count against its circuit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from ..common import deadline
from ..common.errors import DocsumError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from ..common.logs import request_id_var
from . import metrics
from .backends import BackendSpec
from .breaker import State
from .endpoints import Endpoints
from .routing import Backend, Router, Routes
from .settings import GatewaySettings, UpstreamSettings
from .transport import CONNECT_ERRORS, Headers, PooledTransport, Transport, header

log = logging.getLogger(__name__)


@dataclass
class UpstreamResponse:
    """A backend's answer (status < 500 or passed through) and the version that gave it."""

    status: int
    content: bytes
    content_type: str
    version: str

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass
class _Failure:
    """An attempt that failed: the error it becomes, and whether another try may help."""

    error: DocsumError
    retryable: bool


def _upstream_message(content: bytes) -> str:
    """The message of a docsum error body, else the start of the body."""
    try:
        body = json.loads(content)
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return content[:200].decode("utf-8", "replace").strip() or "(empty body)"


class Upstream:
    """One upstream service: its routing, its transport, and the call with retries."""

    def __init__(
        self,
        name: str,
        settings: UpstreamSettings,
        rng: random.Random | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self._rng = rng or random.Random()
        self.router = Router(name, settings.breaker_failures, settings.breaker_open_s, self._rng)
        self.transport = transport or PooledTransport(settings)
        self._series: dict[tuple[str, str], tuple[Any, Any]] = {}
        self.endpoints = Endpoints(name, settings, self.router)

    @property
    def routes(self) -> Routes:
        """The routing table in use now."""
        return self.router.routes

    def apply(self, specs: list[BackendSpec]) -> None:
        """Swap in a new routing table (see :meth:`Endpoints.apply`)."""
        self.endpoints.apply(specs)

    def ready_reason(self) -> str | None:
        """None if at least one endpoint answered its last readiness probe, else why not."""
        backends = self.routes.backends
        if any(b.ready for b in backends):
            return None
        if all(b.ready is None for b in backends):
            return f"{self.name}: backends not probed yet"
        errors = "; ".join(f"{b.url} ({b.endpoint}): {b.probe_error}" for b in backends)
        return f"{self.name}: no backend ready ({errors})"

    async def probe(self, timeout_s: float, late_limit: int) -> None:
        """Ask every endpoint's /readyz, all at once, and remember the answers. A ready
        endpoint stays in rotation through ``late_limit - 1`` late probes in a row (a busy
        backend answers late and still serves); an answer other than 200 or a failed
        connection takes it out at once. The first probe resolves the backend hosts first and
        starts their periodic resolution."""
        await self.endpoints.start()

        async def one(backend: Backend) -> None:
            try:
                async with asyncio.timeout(timeout_s):
                    status, _, _ = await self.transport.send(backend, "GET", "/readyz", b"", [])
            except (TimeoutError, httpx.TimeoutException):
                backend.late_probes += 1
                if backend.ready is not True or backend.late_probes >= late_limit:
                    backend.ready = False
                    backend.probe_error = (
                        f"/readyz did not answer within {timeout_s:g} s "
                        f"({backend.late_probes} probes in a row)"
                    )
                return
            except httpx.HTTPError as exc:
                backend.late_probes = 0
                backend.ready = False
                backend.probe_error = f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc)
                return
            backend.late_probes = 0
            backend.ready = status == 200
            backend.probe_error = "" if backend.ready else f"/readyz answered {status}"

        await asyncio.gather(*(one(b) for b in self.routes.backends))
        for version in self.routes.versions:
            self.endpoints.publish(version)

    async def call(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        data: dict[str, str] | None = None,
        content_type: str | None = None,
        pin: str | None = None,
    ) -> UpstreamResponse:
        """Send one request to a backend of this upstream; retry and map failures.

        Returns the backend's answer when its status is below 500 (4xx are the client's own
        errors, passed through). Raises :class:`DocsumError` subclasses naming the upstream.
        """
        routes = self.routes
        version = self.router.version(routes, pin)
        group = routes.versions[version]
        if files is not None:  # encoded once, sent as it is on every attempt
            encoded = httpx.Request(method, "http://upstream/", files=files, data=data)
            content, content_type = encoded.read(), encoded.headers["content-type"]
        headers = [(b"accept", b"application/json")]
        rid = request_id_var.get()
        if rid:
            headers.append((b"x-request-id", rid.encode("latin-1")))
        if content_type:
            headers.append((b"content-type", content_type.encode("latin-1")))
        s = self.settings
        tried: set[int] = set()
        last: DocsumError | None = None
        for attempt in range(s.retries + 1):
            left = deadline.remaining()
            if left is not None and left <= 0:
                raise last or UpstreamTimeout(
                    f"{self.name}: the request's deadline passed before the call was made",
                    upstream=self.name,
                    version=version,
                )
            backend = self.router.replica(group, tried)
            if backend is None or not backend.breaker.acquire():
                break
            if attempt:
                metrics.UPSTREAM_RETRIES.labels(self.name, version).inc()
            tried.add(id(backend))
            result = await self._attempt(backend, method, path, content or b"", headers)
            if isinstance(result, UpstreamResponse):
                return result
            last = result.error
            if not result.retryable or attempt == s.retries:
                break
            cap = min(s.backoff_max_ms, s.backoff_base_ms * (2**attempt))
            pause = self._rng.uniform(0, cap) / 1000.0
            left = deadline.remaining()
            await asyncio.sleep(pause if left is None else max(0.0, min(pause, left)))
        if last is None:
            raise self.router.circuits_open(
                f"every backend of version {version!r}", version=version
            )
        raise last

    async def _attempt(
        self, backend: Backend, method: str, path: str, content: bytes, headers: Headers
    ) -> UpstreamResponse | _Failure:
        """One call to one backend: its response, or how it failed."""
        version = backend.version
        timeout_s = self.settings.timeout_s
        left = deadline.remaining()
        cut_short = left is not None and left < timeout_s  # the request's deadline comes first
        if left is not None:
            timeout_s = max(0.0, min(timeout_s, left))
            headers = [*headers, (deadline.DEADLINE_HEADER_BYTES, f"{timeout_s:.3f}".encode())]
        backend.outstanding += 1
        start = time.perf_counter()
        status = "error"
        verdict: bool | None = None
        try:
            async with asyncio.timeout(timeout_s):
                code, r_headers, body = await self.transport.send(
                    backend, method, path, content, headers
                )
            status = str(code)
            verdict = code < 500
            if code == 504 and cut_short:
                verdict = None  # the backend kept to the deadline it was given
            if code < 500:
                media = header(r_headers, b"content-type") or "application/json"
                return UpstreamResponse(code, body, media, version)
            return self._server_error(backend, code, r_headers, body)
        except CONNECT_ERRORS as exc:
            verdict = False
            self.endpoints.refresh_soon()
            reason = str(exc) or "connection refused"
            return _Failure(
                UpstreamUnavailable(
                    f"{self.name}: cannot reach a backend ({type(exc).__name__}: {reason})",
                    upstream=self.name,
                    version=version,
                ),
                retryable=True,
            )
        except (TimeoutError, httpx.TimeoutException):
            verdict = None if cut_short else False
            why = "before the request's deadline" if cut_short else f"within {timeout_s:g} s"
            return _Failure(
                UpstreamTimeout(
                    f"{self.name}: no answer {why}", upstream=self.name, version=version
                ),
                retryable=False,  # the time budget is spent
            )
        except httpx.HTTPError as exc:
            verdict = False
            return _Failure(
                UpstreamError(
                    f"{self.name}: the call failed ({type(exc).__name__}: {exc})",
                    upstream=self.name,
                    version=version,
                ),
                retryable=False,
            )
        finally:
            backend.outstanding -= 1
            self._judge(backend, verdict)
            self._observe(version, status, time.perf_counter() - start)

    def _judge(self, backend: Backend, verdict: bool | None) -> None:
        """Tell the backend's circuit breaker how the attempt went (None: the caller left)."""
        before = backend.breaker.state
        if verdict is True:
            backend.breaker.success()
        elif verdict is False:
            backend.breaker.failure()
        else:
            backend.breaker.abandon()
        if backend.breaker.state is not before:
            if backend.breaker.state is State.OPEN:
                log.warning(
                    "circuit opened",
                    extra={
                        "upstream": self.name,
                        "version": backend.version,
                        "backend": backend.url,
                        "endpoint": backend.endpoint,
                    },
                )
            self.endpoints.publish(backend.version)

    def _observe(self, version: str, status: str, seconds: float) -> None:
        """Count one attempt and its time (the labelled series are looked up once)."""
        series = self._series.get((version, status))
        if series is None:
            series = self._series[version, status] = (
                metrics.UPSTREAM_REQUESTS.labels(self.name, version, status),
                metrics.UPSTREAM_DURATION.labels(self.name, version),
            )
        series[0].inc()
        series[1].observe(seconds)

    def _server_error(self, backend: Backend, code: int, headers: Headers, body: bytes) -> _Failure:
        message = f"{self.name}: {_upstream_message(body)}"
        details: dict[str, Any] = {"upstream": self.name, "version": backend.version}
        if code == 503:
            retry_after = header(headers, b"retry-after")
            extra = {"Retry-After": retry_after} if retry_after else {}
            return _Failure(UpstreamUnavailable(message, headers=extra, **details), True)
        if code == 504:
            return _Failure(UpstreamTimeout(message, **details), False)
        return _Failure(UpstreamError(f"{message} (status {code})", **details), False)

    async def aclose(self) -> None:
        await self.endpoints.aclose()
        await self.transport.aclose()


async def probe_forever(upstreams: list[Upstream], settings: GatewaySettings) -> None:
    """Keep every backend's readiness fresh: a probe round every ``probe_interval_s``."""
    while True:
        await asyncio.gather(
            *(u.probe(settings.probe_timeout_s, settings.probe_late_limit) for u in upstreams)
        )
        await asyncio.sleep(settings.probe_interval_s)
