"""Steady client load from a background thread, every answer recorded: the fault tests' load.

Locust drives ``make loadtest``; inside a test an asyncio loop of closed-loop clients is
lighter, starts in milliseconds, and records each request's outcome (status, or the
exception's type when no answer came), which is what "no request lost" is checked on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

#: One request: given a client, send it and return the answer.
Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class LoadReport:
    """What the clients sent and got."""

    sent: int = 0
    #: status code (or exception type name) → count.
    outcomes: Counter[int | str] = field(default_factory=Counter)
    #: The first few answers that were not 200: (seconds into the run, outcome, body).
    failures: list[tuple[float, int | str, str]] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> int:
        return self.outcomes[200]

    @property
    def lost(self) -> int:
        """Requests that did not get a 200."""
        return self.sent - self.ok

    def summary(self) -> str:
        return (
            f"{self.sent} sent in {self.elapsed_s:.1f} s, {self.ok} ok, outcomes "
            f"{dict(self.outcomes)}, first failures {self.failures[:5]}"
        )


class LoadLoop:
    """``concurrency`` clients sending ``send`` back to back until :meth:`stop`."""

    def __init__(self, send: Send, concurrency: int, timeout_s: float = 60.0) -> None:
        self.send = send
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.report = LoadReport()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._started = 0.0

    def __enter__(self) -> LoadLoop:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._started = time.monotonic()
        self._thread.start()

    def stop(self) -> LoadReport:
        """Stop sending, wait for the requests in flight, and return the report."""
        self._stop.set()
        self._thread.join(self.timeout_s + 10)
        self.report.elapsed_s = time.monotonic() - self._started
        return self.report

    async def _client(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            outcome: int | str
            body = ""
            try:
                r = await self.send(client)
                outcome, body = r.status_code, r.text[:300]
            except httpx.HTTPError as exc:
                outcome, body = type(exc).__name__, str(exc)[:300]
            self.report.sent += 1
            self.report.outcomes[outcome] += 1
            self.report.latencies_s.append(time.monotonic() - t0)
            if outcome != 200 and len(self.report.failures) < 20:
                self.report.failures.append((round(t0 - self._started, 2), outcome, body))

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout_s, limits=limits) as client:
            await asyncio.gather(*(self._client(client) for _ in range(self.concurrency)))
