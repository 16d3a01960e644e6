"""Waits that stretch on a busy machine: a test's client-side limits are what a quiet machine
needs, times how many runnable processes each core has now, so a CI machine shared with other
work runs the same checks more slowly instead of failing them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

#: Beyond this a machine is not busy but stuck, and a test should say so.
MAX_SLOWDOWN = 8.0


def slowdown() -> float:
    """Runnable processes per core over the last minute, at least 1, at most MAX_SLOWDOWN."""
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return min(MAX_SLOWDOWN, max(1.0, per_core))


def patient(seconds: float) -> float:
    """``seconds`` on a quiet machine, stretched by :func:`slowdown` on a busy one."""
    return seconds * slowdown()


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 120.0) -> Any:
    """Poll ``check`` until it returns something true; its value. Fails after
    ``patient(timeout_s)`` seconds."""
    limit_s = patient(timeout_s)
    deadline = time.monotonic() + limit_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {limit_s:.0f} s")
        time.sleep(0.1)
