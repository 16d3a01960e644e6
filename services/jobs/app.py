"""The worker's HTTP shell: /livez, /readyz (Redis answers and the consumer group exists) and
/metrics; the job loop runs in its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.exceptions import RedisError

from ..common.health import Health
from ..common.service import create_app
from ..gateway.backends import UPSTREAMS, BackendsConfigError, load_backends, parse_backends
from ..gateway.backends import local_backends as _local_backends
from ..gateway.pipeline import DocumentPipeline
from ..gateway.upstreams import Upstream, probe_forever
from .queue import JobQueue, consumer_name
from .settings import WorkerSettings
from .store import JobStore, connect
from .worker import Worker

#: The service's description in its OpenAPI document.
DESCRIPTION = "Runs the async document jobs queued by the gateway."

log = logging.getLogger(__name__)


def build_app(settings: WorkerSettings | None = None) -> FastAPI:
    """The worker app; settings that cannot be used stop it here, with why."""
    settings = settings or WorkerSettings()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not settings.redis_url:
        raise SystemExit("docsum worker: DOCSUM_WORKER_REDIS_URL is not set (the job queue)")
    try:
        specs = (
            load_backends(settings.backends_file)
            if settings.backends_file is not None
            else parse_backends(_local_backends(), "default local backends")
        )
    except BackendsConfigError as exc:
        raise SystemExit(f"docsum worker: {exc}") from None
    upstreams = {
        "ocr": Upstream("ocr", settings.ocr),
        "summarizer": Upstream("summarizer", settings.summarizer),
    }
    for name in UPSTREAMS:
        upstreams[name].apply(specs[name])
    redis = connect(settings.redis_url, settings.redis_password_file)
    store = JobStore(redis)
    queue = JobQueue(redis, consumer_name("worker-"), settings.visibility_timeout_s)
    pipeline = DocumentPipeline(settings, upstreams["ocr"], upstreams["summarizer"])
    worker = Worker(settings, store, queue, pipeline)
    group_ready = False

    async def redis_ready() -> str | None:
        nonlocal group_ready
        try:
            if not group_ready:
                await queue.ensure_group()
                group_ready = True
            await redis.ping()
        except (RedisError, OSError) as exc:
            group_ready = False
            return f"redis: {type(exc).__name__}: {exc}"
        return None

    health = Health(checks=[redis_ready])

    async def probe_upstreams() -> None:
        await probe_forever(list(upstreams.values()), settings)

    async def take_jobs() -> None:
        while await redis_ready() is not None:  # the group exists before the first read
            log.warning("waiting for Redis", extra={"url": _safe(settings.redis_url or "")})
            await asyncio.sleep(1.0)
        health.ready = True
        log.info("worker taking jobs", extra={"consumer": queue.consumer})
        await worker.run()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(probe_upstreams(), name="probe-upstreams"),
            asyncio.create_task(worker.gauges(), name="queue-gauges"),
        ]
        loop = asyncio.create_task(take_jobs(), name="worker")
        try:
            yield
        finally:
            health.draining = True
            await worker.stop(settings.drain_s)
            # A read of the queue in flight ends within poll_block_s.
            await asyncio.wait({loop}, timeout=settings.poll_block_s + 1.0)
            loop.cancel()
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(loop, *tasks, return_exceptions=True)
            await pipeline.aclose()
            for upstream in upstreams.values():
                with contextlib.suppress(Exception):
                    await upstream.aclose()
            await redis.aclose()

    app = create_app("docsum worker", settings, health, lifespan, description=DESCRIPTION)
    app.state.worker = worker
    return app


def _safe(url: str) -> str:
    """``url`` without a password in it."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if "@" in rest else url
