"""API keys: read from a file of hashes, checked in constant time, never logged.

The file (a Kubernetes Secret in production) has one key per line, ``<name>:<sha256 hex>``,
and ``#`` comments. Only hashes are stored, so the file does not give the keys away. The
name is what rate limits and logs use; the key itself is never written anywhere. Failed
attempts are throttled per client address (:class:`FailureThrottle`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .limits import TokenBucket

_LINE = re.compile(r"^(?P<name>[A-Za-z0-9._@-]{1,64}):(?P<hash>[0-9a-fA-F]{64})$")


class KeysFileError(ValueError):
    """The keys file cannot be used; the message names the line (never a key)."""


def hash_key(key: str) -> str:
    """The hex SHA-256 of ``key``, as stored in the keys file."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_keys(text: str, source: str = "api keys") -> dict[str, bytes]:
    """``name → sha256 digest`` from the file's text; a bad line is an error naming it."""
    keys: dict[str, bytes] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            raise KeysFileError(
                f"{source}: line {n} is not '<name>:<sha256 hex of the key>' "
                "(name: letters, digits, . _ @ -; hash: 64 hex digits)"
            )
        if m["name"] in keys:
            raise KeysFileError(f"{source}: line {n}: name {m['name']!r} is used twice")
        keys[m["name"]] = bytes.fromhex(m["hash"])
    return keys


def load_keys(path: Path) -> dict[str, bytes]:
    """Read and parse the keys file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeysFileError(f"{path}: cannot read: {exc}") from None
    return parse_keys(text, str(path))


@dataclass(frozen=True)
class KeyRing:
    """The valid keys' hashes; :meth:`identify` answers which caller a key belongs to."""

    digests: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_mapping(cls, keys: dict[str, bytes]) -> KeyRing:
        return cls(tuple(keys.items()))

    def identify(self, key: str | None) -> str | None:
        """The name of ``key``'s entry, or None; time does not depend on which entry matched."""
        if not key:
            return None
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
        found: str | None = None
        for name, stored in self.digests:
            # Every entry is compared, matched or not: no early exit to time.
            if hmac.compare_digest(digest, stored) and found is None:
                found = name
        return found


def presented_key(x_api_key: str | None, bearer_token: str | None) -> str | None:
    """The key from ``X-API-Key``, else from ``Authorization: Bearer <key>``."""
    for value in (x_api_key, bearer_token):
        if value and value.strip():
            return value.strip()
    return None


class FailureThrottle:
    """Failed authentications per client address: ``limit`` in a burst, then one more per
    ``window_s / limit`` seconds (a token bucket per address); past that, the seconds to wait.

    Only failures are counted and only failures refused: a valid key is never held back by
    its address's failures, so a client sharing an address (a NAT, a proxy) with a flood of
    wrong keys is still served. Keys are random 256-bit strings, so the throttle is about
    the cost and the noise of a flood, not about guessing.
    """

    #: Addresses remembered; past it the oldest half is forgotten (bounded memory).
    MAX_CLIENTS = 100_000

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = limit / window_s
        self.burst = float(limit)
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def fail(self, client: str) -> int:
        """Count a failure from ``client``: 0 while within the limit, else whole seconds to
        wait (for ``Retry-After``)."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.MAX_CLIENTS:
                for old in list(self._buckets)[: self.MAX_CLIENTS // 2]:
                    del self._buckets[old]
            bucket = self._buckets[client] = TokenBucket(self.rate, self.burst, self.burst, now)
        wait = bucket.take(now)
        return 0 if wait == 0.0 else max(1, math.ceil(wait))
