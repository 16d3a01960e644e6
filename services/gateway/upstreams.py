"""Calling the services behind the gateway: choose a version, a replica, retry, break.

One pool of keep-alive connections per upstream (``http1.Http1Transport``, an httpx
transport; ``https://`` backends use httpx's own). A call picks a version by weight
(or the one pinned by ``X-Docsum-Backend``), then the replica of that version with the fewest
requests in flight (round-robin would pile long OCR requests onto one replica). Connection
errors and 503s are retried with jittered backoff on another replica; a backend that keeps
failing has its circuit opened. What cannot be served becomes a 502/503/504 naming the
upstream.

The routing table is replaced whole when the backends file changes: a request keeps the
:class:`Backend` it picked until it ends, and backends are carried over by (url, version), so
in-flight counts and circuit states survive a reload and no request is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..common.errors import (
    BadRequest,
    DocsumError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from ..common.logs import request_id_var
from . import metrics
from .backends import BackendSpec
from .breaker import CircuitBreaker, State
from .http1 import Http1Transport
from .settings import UpstreamSettings

log = logging.getLogger(__name__)

#: Errors where the request never reached a backend's application: safe to send elsewhere.
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


@dataclass(eq=False)
class Backend:
    """One replica: its URL, version, circuit, and what the gateway knows of it now."""

    url: str
    version: str
    breaker: CircuitBreaker
    outstanding: int = 0
    #: The last readiness probe: True/False, None before the first one.
    ready: bool | None = None
    probe_error: str = ""
    #: The URL taken apart once, for the lean transport (None for https).
    address: tuple[str, int, str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        url = httpx.URL(self.url)
        if url.scheme == "http":
            self.address = (url.host, url.port or 80, url.path.rstrip("/"))


@dataclass
class Routes:
    """An upstream's backends grouped by version, with each version's weight."""

    versions: dict[str, list[Backend]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def backends(self) -> list[Backend]:
        return [b for group in self.versions.values() for b in group]


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


def choose_version(
    weights: Mapping[str, float], usable: set[str], rng: random.Random
) -> str | None:
    """A version drawn with probability ∝ weight among ``usable`` ones with weight > 0."""
    candidates = [(v, w) for v, w in weights.items() if w > 0 and v in usable]
    total = sum(w for _, w in candidates)
    if total <= 0:
        return None
    x = rng.random() * total
    for version, weight in candidates:
        x -= weight
        if x < 0:
            return version
    return candidates[-1][0]


def pick_backend(backends: list[Backend], tried: set[int], rng: random.Random) -> Backend | None:
    """The replica with the fewest requests in flight among those whose circuit lets calls
    through; ones not yet tried and not known unready come first; ties are broken at random."""
    usable = [b for b in backends if b.breaker.available()]
    if not usable:
        return None
    fresh = [b for b in usable if id(b) not in tried] or usable
    ready = [b for b in fresh if b.ready is not False] or fresh
    least = min(b.outstanding for b in ready)
    return rng.choice([b for b in ready if b.outstanding == least])


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """A header's value (``name`` in lower case)."""
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _upstream_message(content: bytes) -> str:
    """The message of a docsum error body, else the start of the body."""
    try:
        body = json.loads(content)
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return content[:200].decode("utf-8", "replace").strip() or "(empty body)"


class Upstream:
    """One upstream service (ocr, summarizer): its client, its routes, the call logic."""

    def __init__(self, name: str, settings: UpstreamSettings, rng: random.Random | None = None):
        self.name = name
        self.settings = settings
        self.routes = Routes()
        self._rng = rng or random.Random()
        self._series: dict[tuple[str, str], tuple[Any, Any]] = {}
        # The transports are called directly, not through httpx.AsyncClient: its cookie,
        # redirect and auth layers cost ~0.2 ms of CPU per call here and do nothing for us.
        self._http = Http1Transport(
            settings.max_connections,
            settings.max_keepalive,
            settings.keepalive_expiry_s,
            settings.connect_timeout_s,
        )
        self._https = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_keepalive,
                keepalive_expiry=settings.keepalive_expiry_s,
            ),
            trust_env=False,
        )
        self._timeouts = {
            "timeout": {
                "connect": settings.connect_timeout_s,
                "read": settings.timeout_s,
                "write": settings.timeout_s,
                "pool": settings.connect_timeout_s,
            }
        }

    def apply(self, specs: list[BackendSpec]) -> None:
        """Swap in a new routing table; backends with the same (url, version) carry over."""
        known = {(b.url, b.version): b for b in self.routes.backends}
        routes = Routes()
        for spec in specs:
            backend = known.get((spec.url, spec.version)) or Backend(
                spec.url,
                spec.version,
                CircuitBreaker(self.settings.breaker_failures, self.settings.breaker_open_s),
            )
            routes.versions.setdefault(spec.version, []).append(backend)
            routes.weights[spec.version] = routes.weights.get(spec.version, 0.0) + spec.weight
        old_versions = set(self.routes.versions)
        self.routes = routes  # one assignment: requests see the old table or the new one
        for version in old_versions - set(routes.versions):
            metrics.UPSTREAM_CIRCUIT_OPEN.labels(self.name, version).set(0)
        for version in routes.versions:
            self._update_circuit_gauge(version)

    def ready_reason(self) -> str | None:
        """None if at least one backend answered its last readiness probe, else why not."""
        backends = self.routes.backends
        if any(b.ready for b in backends):
            return None
        if all(b.ready is None for b in backends):
            return f"{self.name}: backends not probed yet"
        errors = "; ".join(f"{b.url}: {b.probe_error}" for b in backends)
        return f"{self.name}: no backend ready ({errors})"

    async def probe(self, timeout_s: float) -> None:
        """Ask every backend's /readyz, all at once, and remember the answers."""

        async def one(backend: Backend) -> None:
            try:
                async with asyncio.timeout(timeout_s):
                    status, _, _ = await self._send(backend, "GET", "/readyz", b"", [])
                backend.ready = status == 200
                backend.probe_error = "" if backend.ready else f"/readyz answered {status}"
            except TimeoutError:
                backend.ready = False
                backend.probe_error = f"/readyz did not answer within {timeout_s:g} s"
            except httpx.HTTPError as exc:
                backend.ready = False
                backend.probe_error = f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc)

        await asyncio.gather(*(one(b) for b in self.routes.backends))
        for version in self.routes.versions:
            self._update_circuit_gauge(version)

    def _choose(self, routes: Routes, pin: str | None) -> str:
        if pin is not None:
            if pin not in routes.versions:
                known = ", ".join(sorted(routes.versions))
                raise BadRequest(
                    f"X-Docsum-Backend: {pin!r} is not a version of {self.name}; known: {known}",
                    upstream=self.name,
                )
            return pin
        usable = {
            v for v, group in routes.versions.items() if any(b.breaker.available() for b in group)
        }
        version = choose_version(routes.weights, usable, self._rng)
        if version is None:
            raise UpstreamUnavailable(
                f"{self.name}: every backend has its circuit open after repeated failures; "
                f"retry in {self.settings.breaker_open_s:g} s",
                headers={"Retry-After": str(max(1, round(self.settings.breaker_open_s)))},
                upstream=self.name,
            )
        return version

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
        version = self._choose(routes, pin)
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
            backend = pick_backend(group, tried, self._rng)
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
            await asyncio.sleep(self._rng.uniform(0, cap) / 1000.0)
        if last is None:
            raise UpstreamUnavailable(
                f"{self.name}: every backend of version {version!r} has its circuit open after "
                f"repeated failures; retry in {s.breaker_open_s:g} s",
                headers={"Retry-After": str(max(1, round(s.breaker_open_s)))},
                upstream=self.name,
                version=version,
            )
        raise last

    async def _attempt(
        self,
        backend: Backend,
        method: str,
        path: str,
        content: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> UpstreamResponse | _Failure:
        """One call to one backend: its response, or how it failed."""
        version = backend.version
        backend.outstanding += 1
        start = time.perf_counter()
        status = "error"
        verdict: bool | None = None
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                code, r_headers, body = await self._send(backend, method, path, content, headers)
            status = str(code)
            verdict = code < 500
            if code < 500:
                media = _header(r_headers, b"content-type") or "application/json"
                return UpstreamResponse(code, body, media, version)
            return self._server_error(backend, code, r_headers, body)
        except _CONNECT_ERRORS as exc:
            verdict = False
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
            verdict = False
            return _Failure(
                UpstreamTimeout(
                    f"{self.name}: no answer within {self.settings.timeout_s:g} s",
                    upstream=self.name,
                    version=version,
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
                        extra={"upstream": self.name, "version": version, "backend": backend.url},
                    )
                self._update_circuit_gauge(version)
            self._observe(version, status, time.perf_counter() - start)

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

    async def _send(
        self,
        backend: Backend,
        method: str,
        path: str,
        content: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One HTTP exchange on the pooled connections: (status, headers, body)."""
        if backend.address is not None:
            host, port, base = backend.address
            return await self._http.send(method, host, port, base + path, headers, content)
        request = httpx.Request(
            method,
            backend.url + path,
            content=content,
            headers=headers,
            extensions=self._timeouts,
        )
        response = await self._https.handle_async_request(request)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        return response.status_code, response.headers.raw, body

    def _server_error(
        self, backend: Backend, code: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> _Failure:
        message = f"{self.name}: {_upstream_message(body)}"
        details: dict[str, Any] = {"upstream": self.name, "version": backend.version}
        if code == 503:
            retry_after = _header(headers, b"retry-after")
            extra = {"Retry-After": retry_after} if retry_after else {}
            return _Failure(UpstreamUnavailable(message, headers=extra, **details), True)
        if code == 504:
            return _Failure(UpstreamTimeout(message, **details), False)
        return _Failure(UpstreamError(f"{message} (status {code})", **details), False)

    def _update_circuit_gauge(self, version: str) -> None:
        group = self.routes.versions.get(version, [])
        is_open = any(b.breaker.state is not State.CLOSED for b in group)
        metrics.UPSTREAM_CIRCUIT_OPEN.labels(self.name, version).set(1 if is_open else 0)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._https.aclose()
