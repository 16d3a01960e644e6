"""A lean HTTP/1.1 keep-alive client for the gateway's calls to its upstreams.

httpx's ``AsyncClient`` (httpcore: anyio streams, the pure-Python h11 parser, URL parsing,
cookie handling) would spend most of the gateway's CPU per proxied call (docs/decisions.md,
"Where the gateway's CPU goes"). This pool writes requests itself and parses answers with
httptools' C parser (the one uvicorn uses).

Scope: plain ``http://`` to our own services; HTTPS backends use httpx's transport (see
``transport``). :meth:`Http1Transport.send` is the call the gateway makes (no URL parsing, no
httpx objects); ``handle_async_request`` makes it an httpx transport too. Response bodies are
read whole (they are JSON). A request that fails on a reused keep-alive connection before any
byte of the answer came back is sent once more on a new connection: the server closed the
idle connection as we wrote, so nothing ran.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import cast

import httptools
import httpx


class _Connection(asyncio.Protocol):
    """One TCP connection; answers one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._got_bytes = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._keep_alive = False

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid HTTP response: {exc}"))

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            if self._got_bytes:
                error: Exception = httpx.ReadError("the server closed the connection mid-answer")
            else:
                error = httpx.RemoteProtocolError("server disconnected without sending a response")
            self._waiter.set_exception(error)

    # --- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        # Read here: once the message is complete the parser has reset this.
        self._keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # --- use -------------------------------------------------------------------------------

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def got_bytes(self) -> bool:
        return self._got_bytes

    async def exchange(self, data: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        """Send a whole request; (status, headers, body, keep-alive) of its answer."""
        assert self.transport is not None
        self._headers, self._body, self._keep_alive, self._got_bytes = [], [], False, False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        try:
            await self._waiter
        finally:
            self._waiter = None
        keep = self._keep_alive and not self.closed
        return self._parser.get_status_code(), self._headers, b"".join(self._body), keep


class Http1Transport(httpx.AsyncBaseTransport):
    """Pooled keep-alive HTTP/1.1 connections per host:port.

    ``max_connections``: requests in flight at once (more wait for a slot);
    ``max_keepalive``: idle connections kept per host; ``keepalive_expiry_s``: how long an idle
    connection is reused (keep it below the server's own idle timeout — uvicorn's is 5 s).
    """

    def __init__(
        self,
        max_connections: int = 256,
        max_keepalive: int = 64,
        keepalive_expiry_s: float = 4.0,
        connect_timeout_s: float = 2.0,
    ) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._max_keepalive = max_keepalive
        self._expiry = keepalive_expiry_s
        self._connect_timeout = connect_timeout_s
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}
        self._swept_at = time.monotonic()
        self._closed = False

    async def _connect(self, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(_Connection, host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"no connection to {host}:{port} within {self._connect_timeout:g} s"
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(f"{host}:{port}: {exc.strerror or exc}") from None
        return conn

    def _take_idle(self, key: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be closed
            if not conn.closed and now - conn.idle_since < self._expiry:
                return conn
            conn.close()
        return None

    def _release(self, key: tuple[str, int], conn: _Connection) -> None:
        idle = self._idle.setdefault(key, deque())
        if self._closed or len(idle) >= self._max_keepalive:
            conn.close()
            return
        conn.idle_since = now = time.monotonic()
        idle.append(conn)
        if now - self._swept_at > self._expiry:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """Close expired idle connections and forget hosts left with none: endpoints are pod
        addresses, and a pod that left is never asked again."""
        self._swept_at = now
        for key in list(self._idle):
            idle = self._idle[key]
            while idle and (idle[0].closed or now - idle[0].idle_since >= self._expiry):
                idle.popleft().close()  # the oldest first
            if not idle:
                del self._idle[key]

    async def send(
        self,
        method: str,
        host: str,
        port: int,
        target: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        authority: str | None = None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request on a pooled connection: (status, headers, body) of the answer.

        ``headers`` are sent as given, plus Host (``authority``, else ``host:port``) and
        Content-Length.
        """
        key = (host, port)
        head = [
            f"{method} {target} HTTP/1.1\r\nhost: {authority or f'{host}:{port}'}\r\n".encode(),
            *(b"%s: %s\r\n" % (name, value) for name, value in headers),
            b"content-length: %d\r\n\r\n" % len(body),
        ]
        data = b"".join([*head, body])
        async with self._slots:
            for attempt in range(2):
                conn = self._take_idle(key)
                reused = conn is not None
                if conn is None:
                    conn = await self._connect(host, port)
                try:
                    status, answer_headers, content, keep = await conn.exchange(data)
                except httpx.RemoteProtocolError:
                    conn.close()
                    if reused and attempt == 0 and not conn.got_bytes:
                        continue  # a stale keep-alive connection: try a fresh one
                    raise
                except BaseException:
                    conn.close()  # cancelled or failed mid-answer: the connection is unusable
                    raise
                if keep:
                    self._release(key, conn)
                else:
                    conn.close()
                return status, answer_headers, content
        raise AssertionError("unreachable")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The httpx transport interface (``httpx.AsyncClient(transport=...)``)."""
        url = request.url
        body = await request.aread()
        headers = [
            (name, value)
            for name, value in request.headers.raw
            if name.lower() not in (b"host", b"content-length", b"transfer-encoding")
        ]
        target = url.raw_path.decode("ascii")
        status, answer, content = await self.send(
            request.method, url.host, url.port or 80, target, headers, body
        )
        return httpx.Response(status, headers=answer, content=content, request=request)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
