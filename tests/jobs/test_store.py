"""The job store and queue against a real Redis: the scripts' accounting and races."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from docsum.jobs.queue import JobQueue
from docsum.jobs.store import STREAM, JobStore, Refused, Submitted, connect
from tests.support.jobs import RedisServer

pytestmark = [pytest.mark.integration]

LIMITS: dict[str, Any] = {"max_pending": 3, "max_bytes": 10_000, "ttl_s": 60}


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = connect(redis_server.url(9))
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


def _fields(size: int) -> dict[str, Any]:
    return {
        "kind": "png",
        "filename": "a.png",
        "params": "{}",
        "pins": "",
        "input_bytes": size,
        "pages_total": 1,
    }


async def _submit(
    store: JobStore, owner: str = "k", data: bytes = b"x" * 100, idem: str = "", **limits: Any
) -> Submitted | Refused:
    job_id = uuid.uuid4().hex
    await store.upload(job_id, data)
    return await store.submit(
        job_id,
        owner,
        _fields(len(data)),
        digest=str(hash(data)),
        idempotency_key=idem,
        **(LIMITS | limits),
    )


async def test_a_job_ends_once_when_two_workers_race(redis: Redis) -> None:
    store = JobStore(redis)
    submitted = await _submit(store)
    assert isinstance(submitted, Submitted) and submitted.new
    job_id = submitted.job_id
    assert (await store.start(job_id, "a", 3, "1-0"))[0] == "run"
    assert (await store.start(job_id, "b", 3, "1-0"))[0] == "run"  # a reclaimed entry
    results = await asyncio.gather(
        *(store.finish(job_id, "succeeded", "", "", json.dumps({"by": w})) for w in "ab")
    )
    assert sorted(results) == [0, 1]
    job = await store.job(job_id)
    assert job is not None and job["state"] == "succeeded" and job["completions"] == "1"
    assert await store.finish(job_id, "failed", "upstream", "{}", "") == 0
    assert (await store.job(job_id) or {})["state"] == "succeeded"


async def test_quota_counts_inputs_then_results_and_delete_gives_back(redis: Redis) -> None:
    store = JobStore(redis)
    first = await _submit(store, data=b"a" * 4000)
    second = await _submit(store, data=b"b" * 4000)
    assert isinstance(first, Submitted) and isinstance(second, Submitted)
    assert await store.quota("k") == (2, 8000)
    refused = await _submit(store, data=b"c" * 4000)
    assert refused == Refused("bytes", 8000)
    assert await redis.exists(f"docsum:input:{first.job_id}") == 1
    await store.start(first.job_id, "w", 3, "1-0")
    assert await store.finish(first.job_id, "succeeded", "", "", "r" * 10) == 1
    assert await redis.exists(f"docsum:input:{first.job_id}") == 0  # the input is gone
    assert await store.quota("k") == (1, 4010)
    assert 0 < await redis.ttl(f"docsum:result:{first.job_id}") <= 60
    assert await store.delete(second.job_id, "k")
    assert await store.quota("k") == (0, 10)
    assert await store.listing("k", None, 10) == [first.job_id]
    assert not await store.delete(first.job_id, "someone-else")


async def test_pending_limit_and_idempotency(redis: Redis) -> None:
    store = JobStore(redis)
    one = await _submit(store, idem="key-1")
    again = await _submit(store, idem="key-1")
    assert isinstance(one, Submitted) and again == Submitted(one.job_id, False)
    assert await _submit(store, data=b"other", idem="key-1") == Refused("conflict", 0)
    await _submit(store)
    await _submit(store)
    assert await _submit(store) == Refused("pending", 3)
    assert await _submit(store, owner="another") is not None  # limits are per key
    assert await redis.xlen(STREAM) == 4


async def test_dead_letter_after_max_attempts_keeps_the_last_error(redis: Redis) -> None:
    store = JobStore(redis)
    submitted = await _submit(store)
    assert isinstance(submitted, Submitted)
    job_id = submitted.job_id
    for attempt in (1, 2):
        assert await store.start(job_id, "w", 2, "1-0") == ("run", str(attempt))
        error = json.dumps({"code": "x", "message": f"#{attempt}"})
        assert await store.retry(job_id, error) == attempt
    verdict, error = await store.start(job_id, "w", 2, "1-0")
    assert verdict == "dead" and json.loads(error)["message"] == "#2"
    job = await store.job(job_id)
    assert job is not None and job["state"] == "failed" and job["reason"] == "dead_letter"


async def test_an_entry_not_acknowledged_is_claimed_by_another_consumer(redis: Redis) -> None:
    store = JobStore(redis)
    submitted = await _submit(store)
    assert isinstance(submitted, Submitted)
    first = JobQueue(redis, "first", visibility_timeout_s=0.3)
    second = JobQueue(redis, "second", visibility_timeout_s=0.3)
    await first.ensure_group()
    taken = await first.take(0.1)
    assert taken is not None and taken.job_id == submitted.job_id and not taken.claimed
    deadline = time.monotonic() + 30
    claimed = None
    while claimed is None and time.monotonic() < deadline:
        claimed = await second.take(0.1)
    assert claimed is not None and claimed.claimed and claimed.entry == taken.entry
    length, age = await second.backlog()
    assert length == 1 and age >= 0.3
    await second.ack(claimed.entry)
    assert await second.backlog() == (0, 0.0)
