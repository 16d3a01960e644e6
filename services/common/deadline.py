"""One deadline per request, carried downstream, and work that stops when the client leaves.

The gateway gives each request a deadline (its ``request_timeout_s``) and sends what is left
of it with every upstream call as ``X-Docsum-Deadline: <seconds left>``: seconds, not a clock
time, so the services' clocks need not agree with the gateway's. A service takes the tighter
of its own time limit and the header, and refuses work whose deadline has already passed.

:func:`cancel_on_disconnect` runs a request's work while it watches the ASGI receive channel:
when the client hangs up, the work is cancelled (and with it the batcher items it queued and
the upstream calls it made), instead of running on for nobody.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from .errors import ClientDisconnected, Timeout

T = TypeVar("T")

#: Seconds left of the caller's deadline (a decimal number), on calls between services.
DEADLINE_HEADER = "X-Docsum-Deadline"
DEADLINE_HEADER_BYTES = DEADLINE_HEADER.lower().encode("latin-1")

#: The deadline of the request being served, in ``time.monotonic()`` seconds; None: none.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "docsum_deadline", default=None
)


def remaining() -> float | None:
    """Seconds left before the current request's deadline (≤ 0 once passed); None: none."""
    at = _deadline.get()
    return None if at is None else at - time.monotonic()


def parse_header(value: str | bytes | None) -> float | None:
    """Seconds left from an ``X-Docsum-Deadline`` value; None when absent or not a number
    (a malformed header is ignored: the service's own limit still applies)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


def budget(limit_s: float, header: str | bytes | None) -> float:
    """A service's time for one request: its own ``limit_s``, or less when the caller's
    deadline (the header) is closer. Raises :class:`Timeout` when that deadline has passed."""
    left = parse_header(header)
    if left is None:
        return limit_s
    if left <= 0:
        raise Timeout("the request's deadline passed before its work could start")
    return min(limit_s, left)


@asynccontextmanager
async def within(seconds: float, what: str) -> AsyncIterator[None]:
    """Run the block under a deadline ``seconds`` from now: 504 :class:`Timeout` past it, and
    :func:`remaining` tells calls made inside how much is left."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        async with asyncio.timeout(seconds) as scope:
            yield
    except TimeoutError:
        if scope.expired():
            raise Timeout(f"{what} did not finish within its deadline of {seconds:g} s") from None
        raise
    finally:
        _deadline.reset(token)


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


async def cancel_on_disconnect(receive: Receive, work: Coroutine[Any, Any, T]) -> T:
    """Await ``work``; if the client disconnects first, cancel it and raise
    :class:`ClientDisconnected` (answered 499 to nobody, and logged).

    Call it once the request body has been read: the next message on ``receive`` is then the
    disconnect (servers answer ``receive`` with it after the response, too, which is why the
    watch stops as soon as ``work`` is done).
    """
    task = asyncio.ensure_future(work)

    async def hung_up() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watch = asyncio.ensure_future(hung_up())
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # cancelled from above (a deadline): take the work down with us
        task.cancel()
        watch.cancel()
        await asyncio.gather(task, watch, return_exceptions=True)
        raise
    watch.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, watch, return_exceptions=True)
        raise ClientDisconnected("the client closed the connection; its work was stopped")
    await asyncio.gather(watch, return_exceptions=True)
    return task.result()
