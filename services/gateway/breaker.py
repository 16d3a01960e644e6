"""A circuit breaker per backend: stop calling a replica that keeps failing.

Closed: calls go through; ``failures`` consecutive failures open it. Open: no calls for
``open_s`` seconds. Then half-open: one trial call at a time; its success closes the circuit,
its failure opens it again for another ``open_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self, failures: int, open_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = failures
        self.open_s = open_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return State.CLOSED
        if self._clock() - self._opened_at < self.open_s:
            return State.OPEN
        return State.HALF_OPEN

    def available(self) -> bool:
        """Whether a call may be sent now (does not claim the half-open trial)."""
        state = self.state
        return state is State.CLOSED or (state is State.HALF_OPEN and not self._trial)

    def acquire(self) -> bool:
        """Claim the right to call: always when closed, once per trial when half-open."""
        state = self.state
        if state is State.CLOSED:
            return True
        if state is State.HALF_OPEN and not self._trial:
            self._trial = True
            return True
        return False

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial = False

    def abandon(self) -> None:
        """The call ended without a verdict (the client left): free the half-open trial."""
        self._trial = False

    def failure(self) -> None:
        self._failures += 1
        if self._trial or self._failures >= self.threshold:
            self._opened_at = self._clock()
        self._trial = False
