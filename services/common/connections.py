"""What a listener allows a TCP connection: caps on how many, deadlines on idling and on
answers left unread.

uvicorn's own ``limit_concurrency`` counts open connections with requests in flight, so a
client opening idle connections got every request answered 503; its keep-alive timer is armed
only after a response, and ``transport.close()`` waits for buffered bytes a client may never
read. :func:`guarded_protocol` mixes these bounds into the HTTP protocol uvicorn would use
(httptools or h11):

- a cap on open connections, in all and per client address: one over it is closed as soon
  as it is accepted, before any byte is read;
- ``header_timeout_s`` from a connection's start or its previous response: a connection whose
  next request head is incomplete is closed (slowloris, idle connections; uvicorn's own
  keep-alive timer is set a second later, so this one decides);
- ``write_timeout_s``: an answer whose unsent bytes did not shrink for that long (a client
  that reads none of it) has its connection dropped.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from . import metrics
from .logs import Tally

log = logging.getLogger(__name__)


class ConnectionLimits:
    """The open connections of one listener, in all and per client address."""

    def __init__(self, listener: str, total: int, per_client: int = 0) -> None:
        self.listener = listener
        self.total = total
        #: 0: no cap per client.
        self.per_client = per_client
        self.open = 0
        self._by_client: dict[str, int] = {}
        self._gauge = metrics.HTTP_CONNECTIONS.labels(listener)
        self._tally = Tally(log, f"{listener} connections closed by the server")

    def admit(self, client: str) -> bool:
        """Count a new connection from ``client``, or say no (and count why)."""
        if self.open >= self.total:
            self.cut("connection_cap", client)
            return False
        held = self._by_client.get(client, 0)
        if self.per_client and held >= self.per_client:
            self.cut("per_client_cap", client)
            return False
        self._by_client[client] = held + 1
        self.open += 1
        self._gauge.set(self.open)
        return True

    def release(self, client: str) -> None:
        held = self._by_client.get(client, 0) - 1
        if held > 0:
            self._by_client[client] = held
        else:
            self._by_client.pop(client, None)
        self.open -= 1
        self._gauge.set(self.open)

    def cut(self, reason: str, client: str, tell: bool = True) -> None:
        """Count a connection the server closed and, unless told not to, tally it in the log
        (a line per 10 s at most)."""
        metrics.HTTP_CONNECTIONS_CUT.labels(self.listener, reason).inc()
        if tell:
            self._tally.add(reason, client)


class _GuardedConnection:
    """The bounds above, mixed into one of uvicorn's HTTP protocol classes."""

    limits: ConnectionLimits
    header_timeout_s: float = 5.0
    write_timeout_s: float = 10.0
    _client: str | None = None  # set once the connection is counted
    _header_timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None
    _unsent_seen = math.inf
    _bytes_since_armed = False
    # Provided by uvicorn's protocol classes (h11 and httptools alike).
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    client: tuple[str, int] | None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        client = self.client[0] if self.client else ""
        if not self.limits.admit(client):
            self.transport.abort()  # no byte read or written; connection_lost follows
            return
        self._client = client
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._header_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        if self._client is not None:
            self.limits.release(self._client)
            self._client = None
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        self._bytes_since_armed = True
        super().data_received(data)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm_header_timer()

    def pause_writing(self) -> None:
        super().pause_writing()  # type: ignore[misc]
        self._arm_write_timer(math.inf)

    def resume_writing(self) -> None:
        super().resume_writing()  # type: ignore[misc]
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    # --- deadlines -------------------------------------------------------------------------

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._unsent_seen = math.inf
        self._bytes_since_armed = False
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_deadline)

    def _header_deadline(self) -> None:
        # A cycle exists (and is not complete) once a request's head has been parsed.
        if self._client is None or (self.cycle is not None and not self.cycle.response_complete):
            return
        unsent = self.transport.get_write_buffer_size()
        if unsent:  # the previous answer is still leaving: wait while it moves
            if unsent < self._unsent_seen:
                self._unsent_seen = unsent
                self._header_timer = self.loop.call_later(
                    self.header_timeout_s, self._header_deadline
                )
            else:
                self._drop("write_timeout")
        elif not self.transport.is_closing():
            # A connection that sent nothing is idle (counted, not logged: keep-alive clients
            # do that); one that sent part of a head is a slow or broken client.
            if self._bytes_since_armed:
                self.limits.cut("header_timeout", self._client)
            else:
                self.limits.cut("idle_timeout", self._client, tell=False)
            self.transport.close()

    def _arm_write_timer(self, unsent_before: float) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
        unsent = self.transport.get_write_buffer_size()
        self._write_timer = self.loop.call_later(
            self.write_timeout_s, self._write_deadline, min(unsent, unsent_before)
        )

    def _write_deadline(self, unsent_then: float) -> None:
        self._write_timer = None
        unsent = self.transport.get_write_buffer_size()
        if self._client is None or unsent == 0:
            return
        if unsent < unsent_then:  # the client reads, slowly: give it another period
            self._arm_write_timer(unsent)
        else:
            self._drop("write_timeout")

    def _drop(self, reason: str) -> None:
        """Close now, buffered bytes and all (``close()`` would wait for them forever)."""
        if self._client is not None:
            self.limits.cut(reason, self._client)
        self.transport.abort()


def guarded_protocol(
    base: type[asyncio.Protocol],
    limits: ConnectionLimits,
    header_timeout_s: float,
    write_timeout_s: float,
) -> type[asyncio.Protocol]:
    """``base`` (one of uvicorn's HTTP protocols) with the bounds of this module."""
    return type(
        f"Guarded{base.__name__}",
        (_GuardedConnection, base),
        {
            "limits": limits,
            "header_timeout_s": header_timeout_s,
            "write_timeout_s": write_timeout_s,
        },
    )
