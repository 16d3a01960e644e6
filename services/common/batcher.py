"""A dynamic batcher: concurrent requests share one model call.

Like Triton's dynamic batcher: items wait in a bounded queue; a worker takes the first item,
gathers companions until ``max_batch_size`` items or ``max_wait_ms`` have passed, and runs one
model call in a worker thread. The call returns one result *or exception* per item, so a bad
item fails alone. If the call raises as a whole, each item is run again by itself, so the one
that broke it is the only one that fails.

Admission is all or nothing: a caller's items are queued together only if the queue has room
for all of them, else :class:`Overloaded` (503 + Retry-After) is raised at once instead of
letting latency grow without bound. A caller that fails, is cancelled or times out takes its
waiting items out of the queue at once, so their slots are free for the next caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
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


@dataclass(eq=False)
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
        # Waiting items in arrival order; only live ones (a leaving caller removes its own).
        self._waiting: OrderedDict[_Pending[ItemT, ResultT], None] = OrderedDict()
        self._arrived = asyncio.Event()
        self._unfinished = 0  # admitted items not yet answered or withdrawn
        self._all_done = asyncio.Event()
        self._all_done.set()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"batch-{name}")
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._depth = metrics.QUEUE_DEPTH.labels(name)
        self._wait = metrics.QUEUE_WAIT.labels(name)
        self._size = metrics.BATCH_SIZE.labels(name)

    async def run_in_model_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the thread that runs the batches (loading and warming the model).

        All of a model's torch work belongs on one thread: OpenMP gives each thread that starts
        parallel work its own worker team, and with more teams than cores they sleep instead of
        spinning between operators (docs/decisions.md, "The model's one thread").
        """
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    @property
    def depth(self) -> int:
        """Items waiting now (admitted, not yet taken by the worker, caller still there)."""
        return len(self._waiting)

    def start(self) -> None:
        """Start the worker on the running event loop."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def submit(self, item: ItemT, timeout_s: float | None = None) -> ResultT:
        """Queue ``item`` and wait for its result; raise its own exception if it failed."""
        (result,) = await self.submit_all([item], timeout_s)
        return result

    async def submit_all(
        self, items: Sequence[ItemT], timeout_s: float | None = None
    ) -> list[ResultT]:
        """Queue all ``items`` or none, and wait for their results, in order.

        Raises :class:`Overloaded` at once if the queue lacks room for all of them, an item's
        own exception as soon as one fails, :class:`Timeout` after ``timeout_s`` seconds.
        Whenever it raises (or is cancelled), the items still waiting leave the queue at once.
        """
        if self._closing:
            raise ShuttingDown("the service is shutting down; retry on another replica")
        if not items:
            return []
        free = self.settings.max_queue_size - len(self._waiting)
        if len(items) > free:
            metrics.INFERENCE_ITEMS.labels(self.name, "rejected").inc(len(items))
            raise Overloaded(
                f"{self.name} queue is full ({len(self._waiting)} of "
                f"{self.settings.max_queue_size} items waiting, {len(items)} more asked); "
                f"retry after {self.settings.retry_after_s} s",
                retry_after_s=self.settings.retry_after_s,
            )
        loop = asyncio.get_running_loop()
        mine: list[_Pending[ItemT, ResultT]] = [_Pending(i, loop.create_future()) for i in items]
        for p in mine:
            self._waiting[p] = None
        self._unfinished += len(mine)
        self._all_done.clear()
        self._arrived.set()
        self._depth.set(len(self._waiting))
        try:
            async with asyncio.timeout(timeout_s) as deadline:
                return list(await asyncio.gather(*(p.future for p in mine)))
        except TimeoutError:
            if deadline.expired():
                raise Timeout(f"{self.name} did not answer within {timeout_s:g} s") from None
            raise
        finally:
            self._withdraw(mine)

    def _withdraw(self, mine: list[_Pending[ItemT, ResultT]]) -> None:
        """Drop a leaving caller's items: waiting ones free their slots now, running ones are
        skipped when their batch ends."""
        withdrawn = 0
        for p in mine:
            if not p.future.done():
                p.future.cancel()
            if p in self._waiting:
                del self._waiting[p]
                withdrawn += 1
        if withdrawn:
            self._depth.set(len(self._waiting))
            self._finish(withdrawn)

    def _finish(self, n: int) -> None:
        self._unfinished -= n
        if self._unfinished == 0:
            self._all_done.set()

    async def close(self, drain_timeout_s: float = 30.0) -> None:
        """Refuse new items, finish the queued ones, then stop the worker and its thread."""
        self._closing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_done.wait(), drain_timeout_s)
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        for left in self._waiting:
            if not left.future.done():
                left.future.set_exception(ShuttingDown("the service stopped before this item ran"))
        self._executor.shutdown(wait=True)

    def _take(self) -> _Pending[ItemT, ResultT]:
        return self._waiting.popitem(last=False)[0]

    async def _next_arrival(self, timeout_s: float | None) -> bool:
        """Wait until an item is waiting; False if ``timeout_s`` passed first."""
        while not self._waiting:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout_s)
            except TimeoutError:
                return False
        return True

    async def _gather(self, batch: list[_Pending[ItemT, ResultT]]) -> None:
        """Fill ``batch`` (the caller's list, so a cancelled worker can still answer it)."""
        await self._next_arrival(None)
        batch.append(self._take())
        deadline = time.perf_counter() + self.settings.max_wait_ms / 1000.0
        while len(batch) < self.settings.max_batch_size:
            # Whatever is already queued joins without waiting.
            if self._waiting:
                batch.append(self._take())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or not await self._next_arrival(remaining):
                break
        self._depth.set(len(self._waiting))

    async def _loop(self) -> None:
        while True:
            taken: list[_Pending[ItemT, ResultT]] = []
            try:
                await self._gather(taken)
                batch = [p for p in taken if not p.future.done()]  # skip items whose caller left
                if batch:
                    await self._run(batch)
            except asyncio.CancelledError:
                for p in taken:
                    if not p.future.done():
                        p.future.set_exception(ShuttingDown("the service stopped mid-batch"))
                raise
            finally:
                self._finish(len(taken))

    async def _run(self, batch: list[_Pending[ItemT, ResultT]]) -> None:
        started = time.perf_counter()
        for p in batch:
            self._wait.observe(started - p.enqueued)
        self._size.observe(len(batch))
        items = [p.item for p in batch]
        loop = asyncio.get_running_loop()
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
