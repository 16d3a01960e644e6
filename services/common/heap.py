"""Freed memory: kept in the heap for a model server's reuse, or given back when idle.

A forward pass allocates and frees the same few-megabyte activation tensors hundreds of times.
glibc's malloc hands such blocks back to the kernel when they are freed (they were mmap'ed,
or they sit at the top of the heap above ``M_TRIM_THRESHOLD``), so the next pass faults every
page in again and the kernel zeroes it. Raising both thresholds keeps those blocks in the heap
for reuse, as jemalloc or tcmalloc would, at the price of resident memory staying at its peak
(the working set a pod's memory limit has to cover anyway). Blocks over 32 MB (glibc's ceiling
for the setting) are still mapped and unmapped each time. Which service turns it on
(``keep_freed_memory``), and the measurements: docs/decisions.md, "Freed memory kept in the
heap". Linux with glibc only; elsewhere nothing changes.

The other way round, for services whose requests differ widely in size (OCR pages, PDFs):
after a burst, what glibc freed stays in its arenas (one per thread that allocated) and the
process keeps its peak size until a later, innocent request pushes the pod over its memory
limit. :class:`IdleTrim` calls ``malloc_trim(0)`` once the service has been idle a moment
after work, which hands every arena's free pages back (docs/reliability.md, "Memory that
comes back").
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import sys
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (glibc's ceiling for the setting on 64-bit).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap is given back to the kernel only beyond this.
TRIM_THRESHOLD = 1 << 30


def _libc(name: str, *argtypes: type) -> Callable[..., int] | None:
    """The C library's function ``name`` returning an int; None off Linux or where it lacks it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    func.argtypes, func.restype = list(argtypes), ctypes.c_int
    return func


def retain_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed blocks for reuse; False where it cannot be told."""
    mallopt = _libc("mallopt", ctypes.c_int, ctypes.c_int)
    if mallopt is None:
        return False
    # musl has a mallopt that does nothing and returns 0; glibc returns 1 on success.
    done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    done = done and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if done:
        log.info(
            "malloc keeps freed memory for reuse",
            extra={"mmap_threshold_bytes": MMAP_THRESHOLD, "trim_threshold_bytes": TRIM_THRESHOLD},
        )
    return done


def trim() -> bool:
    """Give the free pages of every malloc arena back to the kernel; False where glibc's
    ``malloc_trim`` is missing."""
    malloc_trim = _libc("malloc_trim", ctypes.c_size_t)
    if malloc_trim is None:
        return False
    malloc_trim(0)
    return True


class IdleTrim:
    """:func:`trim` once no work has been done for ``idle_s`` seconds (0: never).

    Call :meth:`done` (on the event loop) or :meth:`done_in_thread` (from a worker thread) when
    work that allocated much ends: it (re)arms a timer on the event loop, so a busy service is
    not trimmed between its requests, and an idle one is trimmed once, not over and over. Work
    that outlives its request (a page being analysed when the request was cancelled) calls it
    too, so the trim comes after it.
    """

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def done(self) -> None:
        if self.idle_s <= 0:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(self.idle_s, self._trim, self._loop)

    def done_in_thread(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.done)

    def _trim(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        loop.run_in_executor(None, _trim_logged)


def _trim_logged() -> None:
    started = time.perf_counter()
    if trim():
        log.debug(
            "freed memory given back", extra={"seconds": round(time.perf_counter() - started, 4)}
        )
