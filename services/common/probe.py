"""Wait for a service's readiness probe: used by the local tools, benches and tests."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable


def wait_ready(
    base_url: str, timeout_s: float = 180.0, alive: Callable[[], bool] | None = None
) -> None:
    """Poll ``base_url``/readyz until it answers 200.

    Raises TimeoutError after ``timeout_s`` seconds, or RuntimeError as soon as ``alive``
    (e.g. "the child process still runs") turns false.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"{base_url} stopped before it was ready")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base_url} not ready within {timeout_s:g} s")
