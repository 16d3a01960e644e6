"""The jobs' queue: a Redis stream read by one consumer group.

A job is one stream entry (``id`` = the job's id). A worker reads new entries with
XREADGROUP; an entry taken and not acknowledged within the visibility timeout (its worker
died, or lost Redis) is claimed by another with XAUTOCLAIM. A live worker renews its claim
(XCLAIM of its own entry) so a long job is not taken from it. An acknowledged entry is
deleted, so the stream's length is the backlog: jobs not taken plus taken and not finished.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from .store import GROUP, STREAM


@dataclass(frozen=True)
class Delivery:
    """One stream entry given to this worker."""

    entry: str
    job_id: str
    claimed: bool  # taken over from a worker that did not finish it


def _str(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class JobQueue:
    def __init__(self, redis: Redis, consumer: str, visibility_timeout_s: float) -> None:
        self.redis = redis
        self.consumer = consumer
        self.min_idle_ms = int(visibility_timeout_s * 1000)
        # XAUTOCLAIM looks at a few entries per call: the scan goes on where it stopped, so
        # an abandoned entry behind many running ones is found too.
        self._claim_from = "0-0"

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group (from the first entry) if missing."""
        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def take(self, block_s: float) -> Delivery | None:
        """An abandoned entry if one has been idle past the visibility timeout, else a new
        one (waiting up to ``block_s``), else None."""
        next_from, claimed, *_ = await self.redis.xautoclaim(
            STREAM, GROUP, self.consumer, self.min_idle_ms, start_id=self._claim_from, count=1
        )
        self._claim_from = _str(next_from)
        for entry, fields in claimed:
            if fields:  # a deleted entry comes back without fields
                return Delivery(_str(entry), _str(fields[b"id"]), claimed=True)
        try:
            answer = await self.redis.xreadgroup(
                GROUP, self.consumer, {STREAM: ">"}, count=1, block=int(block_s * 1000)
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()  # Redis lost its data (no AOF): start again
            return None
        for _, entries in answer or []:
            for entry, fields in entries:
                return Delivery(_str(entry), _str(fields[b"id"]), claimed=False)
        return None

    async def renew(self, entry: str) -> None:
        """Reset the entry's idle time: this worker still runs it."""
        await self.redis.xclaim(STREAM, GROUP, self.consumer, 0, [entry], justid=True)

    async def ack(self, entry: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(STREAM, GROUP, entry)
            pipe.xdel(STREAM, entry)
            await pipe.execute()

    async def backlog(self) -> tuple[int, float]:
        """Entries not finished, and the age of the oldest in seconds (0 when none)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(STREAM)
            pipe.xrange(STREAM, count=1)
            pipe.time()
            length, first, (seconds, micros) = await pipe.execute()
        if not first:
            return int(length), 0.0
        created_ms = int(_str(first[0][0]).split("-")[0])
        now_ms = seconds * 1000 + micros // 1000
        return int(length), max(0.0, (now_ms - created_ms) / 1000.0)


def consumer_name(prefix: str) -> str:
    """A consumer name unique to this process: host and pid, and its start time."""
    return f"{prefix}{socket.gethostname()}-{os.getpid()}-{int(time.time())}"
