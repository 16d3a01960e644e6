"""A dynamic batcher: concurrent requests share one model call, each call one forward pass.

Like Triton's dynamic batcher: items wait in a bounded queue; a worker waits for the first
item, lets companions gather until ``max_batch_size`` items or ``max_wait_ms`` have passed,
and runs one model call of at most ``max_batch_size`` items in a worker thread. Each caller's
wait ends as soon as the call holding its last item returns, whatever else is queued. The
call returns one result *or exception* per item, so a bad item fails alone. If the call
raises as a whole, each item is run again by itself, so the one that broke it is the only one
that fails.

Callers are served fairly: items queue per *flow* (a request; each call of
:meth:`DynamicBatcher.submit_all` is its own flow unless the caller names one), and each
model call shares its room evenly among the flows with items waiting, least recently served
first. A request of thousands of items takes its share of every call, not all of them: a
small request that arrives meanwhile waits for the call running then, and rides in the next.

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
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator, Sequence
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
    waiting: bool = False  # in the queue: admitted, not yet taken or withdrawn


class _FairQueue(Generic[ItemT, ResultT]):
    """Waiting items by flow, each flow first come first served; flows in the order they
    were last served (least recently first)."""

    def __init__(self) -> None:
        self._flows: OrderedDict[Hashable, deque[_Pending[ItemT, ResultT]]] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[_Pending[ItemT, ResultT]]:
        for queue in self._flows.values():
            yield from queue

    def add(self, flow: Hashable, items: list[_Pending[ItemT, ResultT]]) -> None:
        for p in items:
            p.waiting = True
        self._flows.setdefault(flow, deque()).extend(items)
        self._count += len(items)

    def remove(self, flow: Hashable, items: list[_Pending[ItemT, ResultT]]) -> int:
        """Take ``items`` of ``flow`` out where still waiting; how many were."""
        leaving = {p for p in items if p.waiting}
        queue = self._flows.get(flow)
        if not leaving or not queue:
            return 0
        for p in leaving:
            p.waiting = False
        kept = deque(p for p in queue if p not in leaving)
        removed = len(queue) - len(kept)
        if kept:
            self._flows[flow] = kept
        else:
            del self._flows[flow]
        self._count -= removed
        return removed

    def take(self, room: int) -> list[_Pending[ItemT, ResultT]]:
        """Up to ``room`` items, shared evenly among the flows (what a flow with fewer leaves
        goes to the others); the flows served move to the back of the line."""
        taken: list[_Pending[ItemT, ResultT]] = []
        served: list[Hashable] = []
        while room > 0 and self._flows:
            flows = list(self._flows)[:room]  # more flows than room: one item each, in turn
            share = room // len(flows)
            for flow in flows:
                queue = self._flows[flow]
                n = min(share, len(queue))
                for _ in range(n):
                    p = queue.popleft()
                    p.waiting = False
                    taken.append(p)
                room -= n
                if flow not in served:
                    served.append(flow)
                if not queue:
                    del self._flows[flow]
        for flow in served:
            if flow in self._flows:
                self._flows.move_to_end(flow)
        self._count -= len(taken)
        return taken


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
        # Waiting items; only live ones (a leaving caller removes its own).
        self._waiting: _FairQueue[ItemT, ResultT] = _FairQueue()
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
        self,
        items: Sequence[ItemT],
        timeout_s: float | None = None,
        flow: Hashable | None = None,
    ) -> list[ResultT]:
        """Queue all ``items`` or none, and wait for their results, in order.

        ``flow`` names whose items they are (a request submitting in several calls, or
        several at once, passes one key to all of them): calls share their room evenly among
        flows. None: this call is a flow of its own.

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
        key: Hashable = flow if flow is not None else object()
        self._waiting.add(key, mine)
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
            self._withdraw(key, mine)

    def _withdraw(self, flow: Hashable, mine: list[_Pending[ItemT, ResultT]]) -> None:
        """Drop a leaving caller's items: waiting ones free their slots now, running ones are
        skipped when their batch ends."""
        for p in mine:
            if not p.future.done():
                p.future.cancel()
        withdrawn = self._waiting.remove(flow, mine)
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

    async def _arrival(self, timeout_s: float | None) -> bool:
        """Wait for the next admission; False if ``timeout_s`` passed first."""
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _gather(self) -> list[_Pending[ItemT, ResultT]]:
        """The next batch: once an item waits, companions may gather for ``max_wait_ms``;
        then up to ``max_batch_size`` items, shared fairly among the flows."""
        while not self._waiting:
            await self._arrival(None)
        deadline = time.perf_counter() + self.settings.max_wait_ms / 1000.0
        while len(self._waiting) < self.settings.max_batch_size:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or not await self._arrival(remaining):
                break
        batch = self._waiting.take(self.settings.max_batch_size)
        self._depth.set(len(self._waiting))
        return batch

    async def _loop(self) -> None:
        while True:
            taken: list[_Pending[ItemT, ResultT]] = []
            try:
                taken = await self._gather()
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
