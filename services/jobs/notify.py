"""Waiting for a job's end without polling: one subscription per gateway process.

The store publishes a job's id on ``docsum:done`` when the job ends. The gateway keeps one
subscriber connection; a request long-polling an operation (``?wait=30s``) registers a
future woken by its id. A lost subscription (Redis restarting) wakes every waiter, which
reads the job's state again: a wake-up is a hint, the hash is the truth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .store import DONE_CHANNEL

log = logging.getLogger(__name__)


class DoneWaiters:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}

    async def run(self) -> None:
        """Listen on ``docsum:done`` until cancelled, subscribing again after a loss."""
        backoff = 0.1
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(DONE_CHANNEL)
                    backoff = 0.1
                    async for message in pubsub.listen():
                        data = message.get("data")
                        if isinstance(data, bytes):
                            self._wake(data.decode())
            except (RedisError, OSError) as exc:
                log.warning("job notifications lost; subscribing again", extra={"error": str(exc)})
                for job_id in list(self._waiting):
                    self._wake(job_id)
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)

    def _wake(self, job_id: str) -> None:
        for future in self._waiting.get(job_id, ()):
            if not future.done():
                future.set_result(None)

    @contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Future[None]]:
        """A future set when ``job_id`` may have ended; register before reading its state."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(job_id, set()).add(future)
        try:
            yield future
        finally:
            waiting = self._waiting.get(job_id)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiting[job_id]
