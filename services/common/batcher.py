"""A dynamic batcher: concurrent requests share one model call.

Like Triton's dynamic batcher: items wait in a bounded queue; a worker takes the first item,
gathers companions until ``max_batch_size`` items or ``max_wait_ms`` have passed, and runs one
model call in a worker thread. The call returns one result *or exception* per item, so a bad
item fails alone. If the call raises as a whole, each item is run again by itself, so the one
that broke it is the only one that fails. When the queue is full, ``submit`` raises
:class:`Overloaded` (503 + Retry-After) at once instead of letting latency grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from . import metrics
from .errors import Overloaded, ShuttingDown, Timeout
from .settings import BatchSettings

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
T = TypeVar("T")

#: What a model call returns: one result or one exception per item, in order.
BatchFn = Callable[[list[ItemT]], Sequence[ResultT | BaseException]]


@dataclass
class _Pending(Generic[ItemT, ResultT]):
    item: ItemT
    future: asyncio.Future[ResultT]
    enqueued: float = field(default_factory=time.perf_counter)


class DynamicBatcher(Generic[ItemT, ResultT]):
    """Gather items from concurrent callers into batches for ``run_batch``.

    ``run_batch`` runs in one dedicated thread, so the model is never entered twice at once and
    the event loop stays free to take requests while a batch runs.
    """

    def __init__(
        self, name: str, run_batch: BatchFn[ItemT, ResultT], settings: BatchSettings
    ) -> None:
        self.name = name
        self.settings = settings
        self._run_batch = run_batch
        self._queue: asyncio.Queue[_Pending[ItemT, ResultT]] = asyncio.Queue(
            settings.max_queue_size
        )
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"batch-{name}")
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._depth = metrics.QUEUE_DEPTH.labels(name)
        self._wait = metrics.QUEUE_WAIT.labels(name)
        self._size = metrics.BATCH_SIZE.labels(name)

    async def run_in_model_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the thread that runs the batches (loading and warming the model).

        All of a model's torch work belongs on one thread. OpenMP (libgomp, which torch's CPU
        builds use) gives every thread that starts parallel work its own team of workers; once
        it counts more of them than cores, it stops letting idle workers spin (100 spins, not
        300,000), so they sleep and are woken again at every operator. A summarizer loaded on
        one thread and run on another slept 20,000 times per 150 articles and summarized
        ~20 % fewer of them a second.
        """
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    @property
    def depth(self) -> int:
        """Items waiting now."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the worker on the running event loop."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def submit(self, item: ItemT, timeout_s: float | None = None) -> ResultT:
        """Queue ``item`` and wait for its result; raise its own exception if it failed."""
        if self._closing:
            raise ShuttingDown("the service is shutting down; retry on another replica")
        pending: _Pending[ItemT, ResultT] = _Pending(
            item, asyncio.get_running_loop().create_future()
        )
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            metrics.INFERENCE_ITEMS.labels(self.name, "rejected").inc()
            raise Overloaded(
                f"{self.name} queue is full ({self.settings.max_queue_size} items waiting); "
                f"retry after {self.settings.retry_after_s} s",
                retry_after_s=self.settings.retry_after_s,
            ) from None
        self._depth.set(self._queue.qsize())
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout_s)
        except TimeoutError:
            pending.future.cancel()
            raise Timeout(f"{self.name} did not answer within {timeout_s:g} s") from None
        except asyncio.CancelledError:
            # The client went away: drop the item if its batch has not started.
            pending.future.cancel()
            raise

    async def close(self, drain_timeout_s: float = 30.0) -> None:
        """Refuse new items, finish the queued ones, then stop the worker and its thread."""
        self._closing = True
        # Every item taken from the queue is marked done once its batch has run.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_timeout_s)
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        while not self._queue.empty():
            left = self._queue.get_nowait()
            if not left.future.done():
                left.future.set_exception(ShuttingDown("the service stopped before this item ran"))
        self._executor.shutdown(wait=True)

    async def _gather(self) -> list[_Pending[ItemT, ResultT]]:
        first = await self._queue.get()
        batch = [first]
        deadline = time.perf_counter() + self.settings.max_wait_ms / 1000.0
        while len(batch) < self.settings.max_batch_size:
            # Whatever is already queued joins without waiting.
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        self._depth.set(self._queue.qsize())
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            taken = await self._gather()
            batch = [p for p in taken if not p.future.done()]  # skip items whose caller left
            try:
                if not batch:
                    continue
                started = time.perf_counter()
                for p in batch:
                    self._wait.observe(started - p.enqueued)
                self._size.observe(len(batch))
                items = [p.item for p in batch]
                results = await loop.run_in_executor(self._executor, self._run_safely, items)
                for p, result in zip(batch, results, strict=True):
                    if p.future.done():
                        continue
                    if isinstance(result, BaseException):
                        metrics.INFERENCE_ITEMS.labels(self.name, "error").inc()
                        p.future.set_exception(result)
                    else:
                        metrics.INFERENCE_ITEMS.labels(self.name, "ok").inc()
                        p.future.set_result(result)
            except asyncio.CancelledError:
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(ShuttingDown("the service stopped mid-batch"))
                raise
            finally:
                for _ in taken:
                    self._queue.task_done()

    def _run_safely(self, items: list[ItemT]) -> Sequence[ResultT | BaseException]:
        """Run the batch; if it fails as a whole, run each item alone to isolate the bad one."""
        try:
            results = self._run_batch(items)
            if len(results) != len(items):
                raise RuntimeError(f"{self.name}: {len(results)} results for {len(items)} items")
            return results
        except Exception as exc:
            if len(items) == 1:
                return [exc]
            log.warning(
                "batch failed as a whole; retrying its items one by one",
                extra={"model": self.name, "batch_size": len(items), "error": repr(exc)},
            )
            out: list[ResultT | BaseException] = []
            for item in items:
                try:
                    out.extend(self._run_batch([item]))
                except Exception as one:
                    out.append(one)
            return out
