"""What a caller may spend: a token bucket per API key, charged by cost (a document's pages),
and the upload bytes the gateway holds at once."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..common.errors import Overloaded


@dataclass
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; a request takes one per unit of cost.

    Starts full, so a key may send ``burst`` requests at once, then ``rate`` per second.
    """

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; 0.0 if there were enough, else the seconds until there will
        be (nothing is taken then)."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate

    def quota(self, now: float) -> tuple[int, int]:
        """Whole tokens left now, and whole seconds until the bucket is full again."""
        tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        return int(tokens), math.ceil((self.burst - tokens) / self.rate)


class RateLimiter:
    """One :class:`TokenBucket` per caller name (the key's name in the keys file)."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, caller: str, cost: float = 1.0) -> int:
        """0 if ``caller`` may spend ``cost`` now (it is taken), else whole seconds to wait
        (for ``Retry-After``). A cost over the burst is charged as the whole burst."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = TokenBucket(self.rate, self.burst, self.burst, now)
        wait = bucket.take(now, min(cost, self.burst))
        return 0 if wait == 0.0 else max(1, math.ceil(wait))

    def headers(self, caller: str) -> dict[str, str]:
        """``RateLimit-Limit/Remaining/Reset`` (draft-ietf-httpapi-ratelimit-headers) for
        ``caller``'s bucket as it is now: the burst, whole requests left, seconds to full."""
        bucket = self._buckets.get(caller)
        remaining, reset = (int(self.burst), 0) if bucket is None else bucket.quota(self._clock())
        return {
            "RateLimit-Limit": str(int(self.burst)),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
        }


class BodyBudget:
    """Upload bytes held at once, over all requests: a body costs about twice its size in
    memory while it is parsed and forwarded, so the sum is what bounds the gateway's."""

    def __init__(self, limit_bytes: int, retry_after_s: int = 1) -> None:
        self.limit_bytes = limit_bytes
        self.retry_after_s = retry_after_s
        self.held = 0

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        """Hold ``size`` bytes for the block; 503 :class:`Overloaded` at once if they do not
        fit beside what is held now."""
        if self.held + size > self.limit_bytes:
            raise Overloaded(
                f"the gateway holds {self.held:,} bytes of uploads now; {size:,} more would "
                f"pass its limit of {self.limit_bytes:,}: retry in {self.retry_after_s} s",
                retry_after_s=self.retry_after_s,
            )
        self.held += size
        try:
            yield
        finally:
            self.held -= size
