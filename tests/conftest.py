"""Shared fixtures: real services started as processes on 127.0.0.1 (see tests/support)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.jobs import Jobs, JobsFactory, RedisServer, redis_installed, start_jobs
from tests.support.services import (  # noqa: F401  (the names tests/gateway imports from here)
    GATEWAY_KEY,
    ROOT,
    Backends,
    LiveService,
    free_port,
    start_gateway,
    start_service,
)
from tests.support.stack import OCR_ENV, SUMMARIZER_ENV, stable_backends


@pytest.fixture(scope="session")
def summarizer_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    svc = start_service("summarizer", tmp_path_factory.mktemp("summarizer"), SUMMARIZER_ENV)
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def ocr_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    svc = start_service("ocr", tmp_path_factory.mktemp("ocr"), OCR_ENV)
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def gateway_service(
    tmp_path_factory: pytest.TempPathFactory,
    summarizer_service: LiveService,
    ocr_service: LiveService,
) -> Iterator[LiveService]:
    """The gateway in front of the real OCR and summarizer services (one stable version)."""
    svc = start_gateway(
        tmp_path_factory.mktemp("gateway"), stable_backends(ocr_service, summarizer_service)
    )
    yield svc
    svc.stop()


#: ``launch_gateway(name, backends, env=None, wait=True)`` (the fixture below).
GatewayLauncher = Callable[..., LiveService]


@pytest.fixture(scope="module")
def launch_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayLauncher]:
    """``launch_gateway(name, backends, env=None, wait=True)``: a gateway over ``backends``
    (the backends file's JSON) with settings ``env``, in a new folder named after ``name``;
    stopped with the module."""
    started: list[LiveService] = []

    def launch(
        name: str, backends: Backends, env: dict[str, str] | None = None, wait: bool = True
    ) -> LiveService:
        svc = start_gateway(tmp_path_factory.mktemp(name), backends, env, wait)
        started.append(svc)
        return svc

    yield launch
    for svc in started:
        svc.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; each group of tests takes a database of its own."""
    if not redis_installed():
        pytest.fail("Redis is not installed: run `make redis` (make test does)")
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def backends(ocr_service: LiveService, summarizer_service: LiveService) -> Backends:
    return stable_backends(ocr_service, summarizer_service)


@pytest.fixture(scope="module")
def make_jobs(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    backends: dict[str, list[dict[str, object]]],
) -> Iterator[JobsFactory]:
    """``make_jobs(db, workers=0, env=None)``: a gateway (``env`` its settings) and
    ``workers`` workers on Redis database ``db``, emptied first; stopped with the module."""
    started: list[Jobs] = []

    def make(db: int, workers: int = 0, env: dict[str, str] | None = None) -> Jobs:
        tmp = tmp_path_factory.mktemp(f"jobs-db{db}")
        jobs = start_jobs(tmp, redis_server.empty_db(db), backends, env)
        started.append(jobs)
        for _ in range(workers):
            jobs.start_worker()
        return jobs

    yield make
    for jobs in started:
        jobs.stop()
