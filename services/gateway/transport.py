"""Sending one HTTP exchange to a backend, on pooled keep-alive connections.

``http://`` backends go through :class:`~.http1.Http1Transport` (the lean pool for our own
services); ``https://`` ones through httpx's transport. Both are called directly, not through
``httpx.AsyncClient``: its cookie, redirect and auth layers do nothing for these calls and
cost CPU on every one. Both connect to the endpoint's address (pools are per address, so per
pod) and send the URL's host as Host and as the TLS server name, as a call by name would.
"""

from __future__ import annotations

import ssl
from typing import Protocol

import httpx

from .http1 import Http1Transport
from .routing import Backend
from .settings import UpstreamSettings

Headers = list[tuple[bytes, bytes]]
#: (status, headers, body) of one exchange.
Answer = tuple[int, Headers, bytes]

#: Errors where the request never reached a backend's application: safe to send elsewhere.
CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


class Transport(Protocol):
    """What an upstream needs to talk to its backends."""

    async def send(
        self, backend: Backend, method: str, path: str, content: bytes, headers: Headers
    ) -> Answer:
        """One exchange; raises ``httpx.HTTPError`` subclasses when no answer came."""
        ...

    async def aclose(self) -> None: ...


def header(headers: Headers, name: bytes) -> str | None:
    """A header's value (``name`` in lower case)."""
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class PooledTransport:
    """One upstream's connection pools: plain HTTP and HTTPS."""

    def __init__(self, settings: UpstreamSettings) -> None:
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
            verify=(
                ssl.create_default_context(cafile=settings.tls_ca_file)
                if settings.tls_ca_file is not None
                else True
            ),
        )
        self._timeouts = {
            "timeout": {
                "connect": settings.connect_timeout_s,
                "read": settings.timeout_s,
                "write": settings.timeout_s,
                "pool": settings.connect_timeout_s,
            }
        }

    async def send(
        self, backend: Backend, method: str, path: str, content: bytes, headers: Headers
    ) -> Answer:
        if backend.address is not None:
            host, port, base = backend.address
            return await self._http.send(
                method, host, port, base + path, headers, content, authority=backend.authority
            )
        request = httpx.Request(
            method,
            backend.target + path,
            content=content,
            headers=[(b"host", backend.authority.encode("ascii")), *headers],
            extensions={**self._timeouts, "sni_hostname": backend.hostname},
        )
        response = await self._https.handle_async_request(request)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        return response.status_code, response.headers.raw, body

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._https.aclose()
