"""The dynamic batcher: gathering, fairness among callers, per-item errors, back-pressure,
timeouts, draining."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import REGISTRY

from docsum.common.batcher import DynamicBatcher
from docsum.common.errors import Overloaded, ShuttingDown, Timeout
from docsum.common.health import Health
from docsum.common.service import model_lifespan
from docsum.common.settings import BatchSettings


class Recorder:
    """A model that doubles numbers, fails on negatives, and records batch sizes."""

    def __init__(self, delay_s: float = 0.0, poison: int | None = None) -> None:
        self.sizes: list[int] = []
        self.seen: list[int] = []  # every item the model was given, in order
        self.delay_s = delay_s
        self.poison = poison
        self.threads: set[str] = set()

    def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.sizes.append(len(items))
        self.seen.extend(items)
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


class Gate(Recorder):
    """A Recorder whose model calls wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.entered.set()
        if not self.gate.wait(30):
            raise RuntimeError("the test never opened the gate")
        return super().__call__(items)


@contextlib.asynccontextmanager
async def _busy(
    **kw: float,
) -> AsyncIterator[tuple[Gate, DynamicBatcher[int, int], asyncio.Task[int]]]:
    """A gated model and a batcher whose worker is stuck in its call on item 0 (one item per
    batch), and that call's task; the gate opened and the batcher closed on the way out."""
    model = Gate()
    b = await _batcher(model, max_batch_size=1, **kw)
    try:
        first = asyncio.create_task(b.submit(0))
        assert await asyncio.to_thread(model.entered.wait, 10)
        assert b.depth == 0
        yield model, b, first
    finally:
        model.gate.set()
        await b.close()


def _gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("docsum_inference_queue_depth", {"model": name})


def _rejected(name: str) -> float:
    labels = {"model": name, "outcome": "rejected"}
    return REGISTRY.get_sample_value("docsum_inference_items_total", labels) or 0.0


async def test_full_queue_answers_overloaded_with_retry_after() -> None:
    async with _busy(max_queue_size=2, retry_after_s=3) as (model, b, first):
        waiting = [asyncio.create_task(b.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0)  # both are admitted: the queue is full
        assert b.depth == 2
        with pytest.raises(Overloaded) as info:
            await b.submit(99)
        assert info.value.headers["Retry-After"] == "3"
        model.gate.set()
        assert await asyncio.gather(first, *waiting) == [0, 2, 4]


async def test_admission_is_all_or_nothing() -> None:
    async with _busy(max_queue_size=4) as (model, b, first):
        three = asyncio.create_task(b.submit_all([1, 2, 3]))
        await asyncio.sleep(0)
        assert b.depth == 3 and _gauge("test") == 3
        rejected = _rejected("test")
        with pytest.raises(Overloaded, match="3 of 4 items waiting, 2 more asked"):
            await b.submit_all([4, 5])  # one slot is free: neither item takes it
        assert b.depth == 3 and _gauge("test") == 3
        assert _rejected("test") == rejected + 2
        last = asyncio.create_task(b.submit(6))  # the free slot is still there
        await asyncio.sleep(0)
        assert b.depth == 4
        model.gate.set()
        assert await asyncio.gather(first, three, last) == [0, [2, 4, 6], 12]
        assert 4 not in model.seen and 5 not in model.seen


async def test_a_cancelled_burst_frees_its_slots_while_the_worker_is_busy() -> None:
    """The next caller is admitted at once, not when the worker gets to skip the dead items."""
    async with _busy(max_queue_size=8) as (model, b, first):
        page = asyncio.create_task(b.submit_all(list(range(10, 18))))
        await asyncio.sleep(0)
        assert b.depth == 8
        with pytest.raises(Overloaded):
            await b.submit_all([20, 21])  # a sibling page refused ...
        page.cancel()  # ... so the request gives up its other page
        with pytest.raises(asyncio.CancelledError):
            await page
        assert b.depth == 0 and _gauge("test") == 0
        assert not first.done()  # the worker is still stuck on item 0
        after = asyncio.create_task(b.submit_all(list(range(30, 38))))
        await asyncio.sleep(0)
        assert b.depth == 8
        model.gate.set()
        assert await first == 0
        assert await after == [2 * i for i in range(30, 38)]
        assert model.seen == [0, *range(30, 38)]  # the cancelled items never ran


async def test_a_timeout_or_a_failed_item_frees_the_callers_slots_at_once() -> None:
    async with _busy(max_queue_size=4) as (model, b, first):
        with pytest.raises(Timeout, match=r"0\.05 s"):
            await b.submit_all([1, 2, 3, 4], timeout_s=0.05)
        assert b.depth == 0 and _gauge("test") == 0
        # A failed item fails its caller at once; its companions leave the queue.
        failing = asyncio.create_task(b.submit_all([-1, 5, 6]))
        model.gate.set()
        assert await first == 0
        with pytest.raises(ValueError, match="negative -1"):
            await failing
        assert b.depth == 0
        assert await b.submit_all([7, 8, 9, 10]) == [14, 16, 18, 20]


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


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait (off the event loop) until ``condition`` holds; fail after ``timeout_s``."""

    def poll() -> bool:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    assert await asyncio.to_thread(poll), "the model never got there"


class Stepper(Recorder):
    """A Recorder whose model calls each wait for the test to let one more call finish, and
    which remembers the items of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[int]] = []
        self.steps = threading.Semaphore(0)
        self.free = threading.Event()  # let every call through from now on

    def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.calls.append(list(items))
        while not self.free.is_set() and not self.steps.acquire(timeout=0.01):
            pass
        return super().__call__(items)

    async def in_call(self, n: int) -> None:
        """Wait until call ``n`` (from 1) has started."""
        await _until(lambda: len(self.calls) >= n)


async def test_a_small_caller_rides_the_next_call_not_behind_a_large_one() -> None:
    """A caller's wait ends with the call that holds its last item: a small request that
    arrives while a large one is being read waits for the call running then, and its own."""
    model = Stepper()
    b = await _batcher(model, max_batch_size=8, max_wait_ms=0, max_queue_size=1000)
    try:
        large = asyncio.create_task(b.submit_all(list(range(200))))
        await model.in_call(1)
        small = asyncio.create_task(b.submit_all([1000, 1001]))
        await asyncio.sleep(0)
        model.steps.release()  # call 1 (the large one's first 8) ends
        await model.in_call(2)
        assert {1000, 1001} <= set(model.calls[1])  # the small one is in the very next call
        model.steps.release()  # call 2 ends
        assert await asyncio.wait_for(small, 10) == [2000, 2002]
        assert not large.done() and len(model.calls) <= 3  # the large one has 190 to go
        model.free.set()
        assert await large == [2 * i for i in range(200)]
        assert all(len(c) <= 8 for c in model.calls)
    finally:
        model.free.set()
        await b.close()


async def test_calls_are_shared_evenly_among_flows() -> None:
    """Each call's room is split evenly among the flows with items waiting (what a small one
    does not need goes to the others); calls of one flow count as one."""
    model = Stepper()
    b = await _batcher(model, max_batch_size=9, max_wait_ms=0, max_queue_size=1000)
    try:
        blocker = asyncio.create_task(b.submit(-1000))  # holds the worker while all queue up
        await model.in_call(1)
        a = [asyncio.create_task(b.submit_all(list(range(i, i + 30)), flow="a")) for i in (0, 30)]
        c = asyncio.create_task(b.submit_all(list(range(100, 160))))
        small = asyncio.create_task(b.submit(500))
        await asyncio.sleep(0)
        model.free.set()
        await asyncio.gather(*a, c, small)
        with pytest.raises(ValueError):
            await blocker
        second, third = model.calls[1], model.calls[2]
        assert 500 in second and len(second) == 9
        assert sum(i < 60 for i in second) == 4 and sum(100 <= i < 160 for i in second) == 4
        assert sum(i < 60 for i in third) in (4, 5) and len(third) == 9
        # Within a flow, first come first served: "a"'s first call before its second.
        firsts = sorted(i for i in second + third if i < 60)
        assert firsts == list(range(len(firsts)))
    finally:
        model.free.set()
        await b.close()


async def test_more_flows_than_room_take_turns() -> None:
    model = Stepper()
    b = await _batcher(model, max_batch_size=2, max_wait_ms=0, max_queue_size=1000)
    try:
        blocker = asyncio.create_task(b.submit(0))
        await model.in_call(1)
        callers = [asyncio.create_task(b.submit_all([10 * f + 1, 10 * f + 2])) for f in range(1, 5)]
        await asyncio.sleep(0)
        model.free.set()
        await asyncio.gather(blocker, *callers)
        # Four flows, room for two a call: every flow is served once before any twice.
        firsts = [i // 10 for c in model.calls[1:3] for i in c]
        assert sorted(firsts) == [1, 2, 3, 4]
    finally:
        model.free.set()
        await b.close()


async def test_a_slow_model_answers_a_small_caller_within_two_calls_of_a_large_one() -> None:
    """With a model whose calls take real time, the small caller's wait is counted in calls:
    the one running when it arrived and its own, whatever the large one still has queued."""
    model = Recorder(delay_s=0.02)
    b = await _batcher(model, max_batch_size=16, max_wait_ms=1, max_queue_size=4000)
    try:
        large = asyncio.create_task(b.submit_all(list(range(1600)), flow="large"))
        await _until(lambda: len(model.sizes) >= 3)
        calls_before = len(model.sizes)
        assert await b.submit(5000) == 10000
        assert len(model.sizes) - calls_before <= 2
        assert not large.done()
        assert len(await large) == 1600
    finally:
        await b.close()
