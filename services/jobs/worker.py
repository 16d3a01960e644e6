"""The worker loop: take a job, run the document pipeline on it, store the result, acknowledge.

The pipeline is the synchronous route's own (:class:`DocumentPipeline`): one pipeline, two
callers. Delivery is at least once (a job whose worker died is claimed by another after the
visibility timeout), completion exactly once (the store's FINISH script ends a job once,
whoever else races for it). Per attempt:

- the client's own errors (an unreadable file, a limit) fail the job at once: ``bad_input``;
- other failures (an upstream down, a timeout) put it back for another attempt; the
  ``max_attempts``-th fails it as ``dead_letter`` with its last error;
- a cancel seen while it runs stops the pipeline.

On SIGTERM the worker takes no new job, gives the current one ``drain_s`` to finish, then
hands it back to the queue (not counted as an attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from redis.exceptions import RedisError

from ..common.errors import DocsumError
from ..common.logs import request_id_var
from ..gateway.pins import parse_pins
from ..gateway.pipeline import DocumentPipeline, SummaryParams, UpstreamAnswered
from . import metrics
from .queue import Delivery, JobQueue
from .settings import WorkerSettings
from .store import JobStore, error_json

log = logging.getLogger(__name__)

#: Seconds between writes of a running job's progress (and checks for its cancel).
PROGRESS_EVERY_S = 0.5
#: Longest pause between retries of Redis when it does not answer.
MAX_BACKOFF_S = 5.0


class _Cancelled(Exception):
    """The job was cancelled or deleted while it ran."""


class Worker:
    def __init__(
        self,
        settings: WorkerSettings,
        store: JobStore,
        queue: JobQueue,
        pipeline: DocumentPipeline,
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.pipeline = pipeline
        self.stopping = asyncio.Event()
        #: The jobs running now (at most ``settings.concurrency``).
        self.running: set[asyncio.Task[None]] = set()
        #: Slots reading the queue now: a job handed back while one reads would be taken again.
        self.reading = 0
        self.no_reads = asyncio.Event()

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Take and run jobs, ``concurrency`` at once, until :meth:`stop`."""
        async with asyncio.TaskGroup() as group:
            for slot in range(self.settings.concurrency):
                group.create_task(self._take_and_run(), name=f"jobs-slot-{slot}")

    async def _take_and_run(self) -> None:
        """One slot: take a job, run it to its end, take the next."""
        backoff = 0.1
        while not self.stopping.is_set():
            self.reading += 1
            self.no_reads.clear()
            try:
                delivery = await self.queue.take(self.settings.poll_block_s)
                backoff = 0.1
                if delivery is None:
                    continue
                task = asyncio.create_task(self._handle(delivery), name="job")
                self.running.add(task)
            except (RedisError, OSError) as exc:
                log.warning("the job queue does not answer; retrying", extra={"error": str(exc)})
                await self._pause(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            finally:
                self.reading -= 1
                if not self.reading:
                    self.no_reads.set()
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not self.stopping.is_set():
                    raise
            finally:
                self.running.discard(task)

    async def stop(self, drain_s: float) -> None:
        """Take no new job; let the running ones finish within ``drain_s``, else hand them
        back (once no slot reads the queue, so none takes them again)."""
        self.stopping.set()
        loop = asyncio.get_running_loop()
        drained_by = loop.time() + drain_s
        if self.reading:  # a read of the queue ends within poll_block_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.no_reads.wait(), self.settings.poll_block_s + 1.0)
        if not self.running:
            return
        timeout = max(0.0, drained_by - loop.time())
        _, late = await asyncio.wait(set(self.running), timeout=timeout)
        if late:
            log.warning(
                "draining: jobs still running are handed back",
                extra={"drain_s": drain_s, "jobs": len(late)},
            )
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def _redis(self, call: Any, *args: Any) -> Any:
        """``call(*args)``, retried while Redis does not answer (a restart), until it does."""
        backoff = 0.1
        while True:
            try:
                return await call(*args)
            except (RedisError, OSError) as exc:
                log.warning("Redis does not answer; retrying", extra={"error": str(exc)})
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)

    # --- one job ----------------------------------------------------------------------------

    async def _handle(self, delivery: Delivery) -> None:
        s = self.settings
        job_id, entry = delivery.job_id, delivery.entry
        request_id_var.set(job_id)  # upstream calls and log lines carry the job's id
        verdict, value = await self._redis(
            self.store.start, job_id, self.queue.consumer, s.max_attempts, entry
        )
        if verdict != "run":
            await self._redis(self.queue.ack, entry)
            if verdict == "dead":
                self._ended("failed", "dead_letter", None)
                log.warning("job dead-lettered", extra={"job": job_id, "error": value})
            elif verdict == "gone":
                metrics.COMPLETED.labels("cancelled", "deleted").inc()
            elif value == "cancelled":
                metrics.COMPLETED.labels("cancelled", "cancelled").inc()
            return
        attempt = int(value)
        job = await self._redis(self.store.job, job_id)
        data = await self._redis(self.store.input, job_id)
        if job is None or data is None:  # deleted between the take and now
            if job is not None:
                gone = error_json("bad_input", "the job's input is no longer in the store")
                await self._redis(self.store.finish, job_id, "failed", "bad_input", gone, "")
            await self._redis(self.queue.ack, entry)
            return
        log.info(
            "job started",
            extra={"job": job_id, "attempt": attempt, "claimed": delivery.claimed},
        )
        metrics.IN_PROGRESS.inc()
        try:
            await self._attempt(job, data, entry, attempt)
        finally:
            metrics.IN_PROGRESS.dec()

    async def _attempt(self, job: dict[str, str], data: bytes, entry: str, attempt: int) -> None:
        job_id = job["id"]
        pages = [0, int(job.get("pages_total") or 0)]

        def progress(done: int, total: int) -> None:
            pages[0], pages[1] = done, total

        params = json.loads(job.get("params") or "{}")
        run = asyncio.create_task(
            self.pipeline.run(
                data,
                job["kind"],
                job.get("filename", ""),
                SummaryParams(params.get("max_sentences"), params.get("ratio")),
                parse_pins(job.get("pins") or None),
                progress=progress,
            )
        )
        watch = asyncio.create_task(self._watch(job_id, entry, run, pages))
        del data
        try:
            body = await run
        except asyncio.CancelledError:
            if watch.done() and not watch.cancelled() and isinstance(watch.exception(), _Cancelled):
                await self._redis(self.queue.ack, entry)
                metrics.COMPLETED.labels("cancelled", "cancelled").inc()
                log.info("job cancelled while running", extra={"job": job_id})
                return
            # The worker stops: the job goes back to the queue for another worker.
            with contextlib.suppress(RedisError, OSError):
                await self.store.hand_back(job_id, entry)
            raise
        except UpstreamAnswered as answered:
            await self._failed(job, entry, attempt, _answered(answered), retry=False)
        except DocsumError as exc:
            err = error_json(exc.code, exc.message, **_jsonable(exc.details))
            await self._failed(job, entry, attempt, err, retry=exc.status >= 500)
        except Exception as exc:  # a bug or an unexpected answer: tried again, then dead
            log.exception("job attempt failed", extra={"job": job_id})
            await self._failed(job, entry, attempt, error_json("internal_error", str(exc)), True)
        else:
            result = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
            read = len(body["pages"])
            await self._redis(self.store.progress, job_id, self.queue.consumer, read, read)
            won = await self._redis(self.store.finish, job_id, "succeeded", "", "", result)
            await self._redis(self.queue.ack, entry)
            if won == 1:
                metrics.PAGES.inc(read)
                self._ended("succeeded", "", job)
                log.info("job succeeded", extra={"job": job_id, "pages": read})
            else:
                log.info("job had ended already; result dropped", extra={"job": job_id})
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch

    async def _watch(
        self, job_id: str, entry: str, run: asyncio.Task[Any], pages: list[int]
    ) -> None:
        """While the job runs: write its progress, renew its claim, stop it if cancelled."""
        renew_every = self.settings.visibility_timeout_s / 3
        renewed = time.monotonic()
        while not run.done():
            await asyncio.sleep(PROGRESS_EVERY_S)
            try:
                if time.monotonic() - renewed >= renew_every:
                    await self.queue.renew(entry)
                    renewed = time.monotonic()
                state = await self.store.progress(job_id, self.queue.consumer, *pages)
            except (RedisError, OSError):
                continue  # Redis restarting: the job goes on; its end is retried
            if state in ("", "cancelled"):
                run.cancel()
                raise _Cancelled(job_id)

    async def _failed(
        self, job: dict[str, str], entry: str, attempt: int, err: str, retry: bool
    ) -> None:
        job_id = job["id"]
        if retry and attempt < self.settings.max_attempts:
            await self._redis(self.store.retry, job_id, err)
            log.warning(
                "job attempt failed; it will be tried again",
                extra={"job": job_id, "attempt": attempt, "error": err},
            )
            return  # not acknowledged: claimed again after the visibility timeout
        reason = "dead_letter" if retry else "bad_input"
        if retry:
            detail = json.loads(err)
            detail["message"] = f"failed {attempt} times; last error: {detail['message']}"
            err = json.dumps(detail, ensure_ascii=False)
        won = await self._redis(self.store.finish, job_id, "failed", reason, err, "")
        await self._redis(self.queue.ack, entry)
        if won == 1:
            self._ended("failed", reason, job)
            log.warning("job failed", extra={"job": job_id, "reason": reason, "error": err})

    def _ended(self, outcome: str, reason: str, job: dict[str, str] | None) -> None:
        metrics.COMPLETED.labels(outcome, reason).inc()
        if reason == "dead_letter":
            metrics.DEAD_LETTERED.inc()
        if job is not None and job.get("created"):
            age = time.time() - int(job["created"]) / 1000.0
            metrics.DURATION.labels(outcome).observe(max(0.0, age))

    # --- the queue's gauges -----------------------------------------------------------------

    async def gauges(self) -> None:
        """Keep ``docsum_jobs_pending`` and the oldest job's age fresh."""
        while True:
            try:
                length, age = await self.queue.backlog()
                metrics.PENDING.set(length)
                metrics.OLDEST_AGE.set(age)
            except (RedisError, OSError):
                pass
            await asyncio.sleep(self.settings.gauges_interval_s)


def _answered(answered: UpstreamAnswered) -> str:
    """An upstream's refusal of the document (4xx) as the job's error."""
    r = answered.response
    try:
        err = r.json().get("error", {})
    except ValueError:
        err = {}
    message = str(err.get("message", f"upstream answered {r.status}"))
    return error_json(err.get("code", "invalid_input"), message, status=r.status)


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if isinstance(v, str | int | float | bool | None)}
