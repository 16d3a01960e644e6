"""The dynamic batcher: gathering, per-item errors, back-pressure, timeouts, draining."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from docsum.common.batcher import DynamicBatcher
from docsum.common.errors import Overloaded, ShuttingDown, Timeout
from docsum.common.health import Health
from docsum.common.service import model_lifespan
from docsum.common.settings import BatchSettings


class Recorder:
    """A model that doubles numbers, fails on negatives, and records batch sizes."""

    def __init__(self, delay_s: float = 0.0, poison: int | None = None) -> None:
        self.sizes: list[int] = []
        self.delay_s = delay_s
        self.poison = poison
        self.threads: set[str] = set()

    def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.sizes.append(len(items))
        self.threads.add(threading.current_thread().name)
        if self.poison is not None and self.poison in items:
            raise RuntimeError("poisoned batch")
        time.sleep(self.delay_s)
        return [ValueError(f"negative {i}") if i < 0 else 2 * i for i in items]


async def _batcher(model: Recorder, **kw: float) -> DynamicBatcher[int, int]:
    b: DynamicBatcher[int, int] = DynamicBatcher("test", model, BatchSettings(**kw))
    b.start()
    return b


async def test_concurrent_items_share_batches_up_to_the_limit() -> None:
    model = Recorder(delay_s=0.02)
    b = await _batcher(model, max_batch_size=4, max_wait_ms=50)
    results = await asyncio.gather(*(b.submit(i) for i in range(10)))
    await b.close()
    assert results == [2 * i for i in range(10)]
    assert max(model.sizes) == 4
    assert sum(model.sizes) == 10
    assert len(model.sizes) <= 4
    assert len(model.threads) == 1  # the model is never entered from two threads


async def test_single_item_waits_at_most_max_wait() -> None:
    b = await _batcher(Recorder(), max_batch_size=64, max_wait_ms=30)
    start = time.perf_counter()
    assert await b.submit(21) == 42
    assert time.perf_counter() - start < 0.5
    await b.close()


async def test_a_bad_item_fails_alone() -> None:
    b = await _batcher(Recorder(), max_batch_size=8, max_wait_ms=30)
    results = await asyncio.gather(*(b.submit(i) for i in (1, -1, 3)), return_exceptions=True)
    await b.close()
    assert results[0] == 2 and results[2] == 6
    assert isinstance(results[1], ValueError)


async def test_a_batch_that_raises_is_retried_item_by_item() -> None:
    model = Recorder(poison=13)
    b = await _batcher(model, max_batch_size=8, max_wait_ms=30)
    results = await asyncio.gather(*(b.submit(i) for i in (1, 13, 2)), return_exceptions=True)
    await b.close()
    assert results[0] == 2 and results[2] == 4
    assert isinstance(results[1], RuntimeError)


async def test_full_queue_answers_overloaded_with_retry_after() -> None:
    b = await _batcher(Recorder(delay_s=0.3), max_batch_size=1, max_queue_size=2, retry_after_s=3)
    tasks = [asyncio.create_task(b.submit(0))]
    await asyncio.sleep(0.05)  # the worker has taken item 0 and runs it
    tasks += [asyncio.create_task(b.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0.01)  # two wait: the queue is full
    with pytest.raises(Overloaded) as info:
        await b.submit(99)
    assert info.value.headers["Retry-After"] == "3"
    assert await asyncio.gather(*tasks) == [0, 2, 4]
    await b.close()


async def test_timeout_gives_up_on_the_item() -> None:
    b = await _batcher(Recorder(delay_s=0.5), max_batch_size=1)
    with pytest.raises(Timeout):
        await b.submit(1, timeout_s=0.05)
    await b.close()


async def test_close_finishes_queued_items_and_refuses_new_ones() -> None:
    b = await _batcher(Recorder(delay_s=0.05), max_batch_size=2, max_wait_ms=1)
    tasks = [asyncio.create_task(b.submit(i)) for i in range(6)]
    await asyncio.sleep(0.01)
    await b.close(drain_timeout_s=5)
    assert [t.result() for t in tasks] == [0, 2, 4, 6, 8, 10]
    with pytest.raises(ShuttingDown):
        await b.submit(1)


class ThreadedModel(Recorder):
    """A Recorder that also notes the thread that loads and warms it up."""

    name = "threaded"
    version = "1"
    device = "cpu"

    def load(self) -> None:
        self.threads.add(threading.current_thread().name)

    def warmup(self) -> None:
        self.threads.add(threading.current_thread().name)


async def test_the_model_loads_warms_and_runs_on_one_thread() -> None:
    model, health = ThreadedModel(), Health()
    batcher: DynamicBatcher[int, int] = DynamicBatcher("test", model, BatchSettings())
    async with model_lifespan(model, health, [batcher], drain_timeout_s=5):
        for _ in range(200):
            if health.ready:
                break
            await asyncio.sleep(0.01)
        assert health.ready
        assert await asyncio.gather(*(batcher.submit(i) for i in range(5))) == [0, 2, 4, 6, 8]
    # One thread: OpenMP would otherwise keep a second worker team and stop spinning.
    assert len(model.threads) == 1 and next(iter(model.threads)).startswith("batch-test")
