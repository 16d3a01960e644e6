"""Failures the queue must survive: a worker killed mid-job, Redis restarted, a job that
keeps failing."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.gateway.conftest import dead_url
from tests.gateway.documents import ARTICLE, png_bytes, text_page, tiff_bytes
from tests.support.jobs import Jobs, JobsFactory, RedisServer
from tests.support.pace import wait_for
from tests.support.services import counter

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def jobs(make_jobs: JobsFactory) -> Jobs:
    """A gateway on database 2; each test starts the workers it needs."""
    return make_jobs(2)


def _job(jobs: Jobs, name: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = redis.Redis.from_url(jobs.redis_url).hgetall(  # type: ignore[assignment]
        f"docsum:job:{name.split('/')[1]}"
    )
    return {k.decode(): v.decode() for k, v in raw.items()}


#: Pages of the jobs stopped mid-way: seconds of work on a quiet machine, so the job is still
#: running when the test stops its worker.
LONG = 12


def _long_tiff() -> bytes:
    return tiff_bytes([text_page(ARTICLE[i % 6 :] + ARTICLE[: i % 6]) for i in range(LONG)])


def test_a_job_of_a_killed_worker_is_claimed_by_another_and_completes_once(jobs: Jobs) -> None:
    first = jobs.start_worker()
    tiff = _long_tiff()
    op = jobs.submit(tiff, "scan.tiff").json()

    def reading() -> dict[str, Any] | None:
        meta: dict[str, Any] = jobs.get(op["name"]).json()["metadata"]
        return meta if meta["state"] == "running" and meta["pages_done"] >= 1 else None

    meta = wait_for("the first worker reads a page", reading)
    assert meta["pages_done"] < LONG, "the job ended before the worker could be killed"
    # The backlog's gauges see the job (refreshed every 0.5 s).
    wait_for("the backlog gauge", lambda: counter(first, "docsum_jobs_pending") == 1)
    wait_for("the age gauge", lambda: counter(first, "docsum_jobs_oldest_pending_age_seconds") > 0)
    assert counter(first, "docsum_jobs_in_progress") == 1
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    second = jobs.start_worker()
    done = jobs.done(op["name"])
    assert done["metadata"]["state"] == "succeeded", done
    assert [p["number"] for p in done["response"]["pages"]] == list(range(1, LONG + 1))
    job = _job(jobs, op["name"])
    assert job["completions"] == "1" and job["attempts"] == "2"
    assert counter(second, "docsum_jobs_completed_total", outcome="succeeded") == 1
    backlog = redis.Redis.from_url(jobs.redis_url)
    wait_for("the backlog is empty", lambda: backlog.xlen("docsum:jobs") == 0)
    wait_for("the backlog gauge", lambda: counter(second, "docsum_jobs_pending") == 0)
    assert counter(second, "docsum_jobs_pages_total") == LONG
    second.stop()


def test_no_accepted_job_is_lost_when_redis_is_killed_and_restarted(
    jobs: Jobs, redis_server: RedisServer
) -> None:
    worker = jobs.start_worker()
    accepted = []
    for i in range(4):
        r = jobs.submit(png_bytes(text_page(ARTICLE[i:] + ARTICLE[:i])), f"page-{i}.png")
        assert r.status_code == 202, r.text
        accepted.append(r.json()["name"])
    redis_server.stop(signal.SIGKILL)  # no shutdown save: only the append-only file is left
    redis_server.start()
    states = {name: jobs.done(name)["metadata"]["state"] for name in accepted}
    assert set(states.values()) == {"succeeded"}, states
    assert all(_job(jobs, name)["completions"] == "1" for name in accepted)
    # The worker went on after Redis came back, and the gateway answers again.
    assert jobs.submit(png_bytes(text_page(ARTICLE[:2]))).status_code == 202
    assert worker.proc.poll() is None
    worker.stop()


def test_a_job_failing_every_attempt_is_dead_lettered_with_its_last_error(
    make_jobs: JobsFactory,
) -> None:
    # The gateway's backends are up (it accepts the job); the worker's OCR is not.
    j = make_jobs(3)
    j.backends = {**j.backends, "ocr": [{"url": dead_url(), "version": "stable", "weight": 100}]}
    worker = j.start_worker({"DOCSUM_WORKER_MAX_ATTEMPTS": "2"})
    op = j.submit(png_bytes(text_page(ARTICLE[:2]))).json()
    done = j.done(op["name"])
    assert done["metadata"]["state"] == "failed" and done["metadata"]["attempts"] == 2
    error = done["error"]
    assert error["reason"] == "dead_letter"
    assert error["code"] == "upstream_unavailable", error
    assert error["message"].startswith("failed 2 times; last error: ocr"), error
    assert counter(worker, "docsum_jobs_dead_lettered_total") == 1
    assert counter(worker, "docsum_jobs_completed_total", reason="dead_letter") == 1


def test_a_worker_stopped_by_sigterm_hands_its_job_back(jobs: Jobs) -> None:
    # No drain time: the running job is handed back at once, however fast the machine.
    first = jobs.start_worker({"DOCSUM_WORKER_DRAIN_S": "0"})
    tiff = _long_tiff()
    op = jobs.submit(tiff, "scan.tiff").json()

    def reading() -> dict[str, Any] | None:
        meta: dict[str, Any] = jobs.get(op["name"]).json()["metadata"]
        return meta if meta["state"] == "running" and meta["pages_done"] >= 1 else None

    wait_for("the worker reads a page", reading)
    # uvicorn re-raises SIGTERM once drained: -SIGTERM is a clean exit, -SIGKILL would not be.
    assert first.stop(grace_s=30) in (0, -signal.SIGTERM)
    assert "jobs still running are handed back" in first.logs()
    job = _job(jobs, op["name"])
    assert job["state"] == "queued" and job["attempts"] == "0", job  # not a failed attempt
    second = jobs.start_worker()
    done = jobs.done(op["name"])
    assert done["metadata"]["state"] == "succeeded" and done["metadata"]["attempts"] == 1
    assert _job(jobs, op["name"])["completions"] == "1"
    second.stop()


def test_a_worker_is_not_ready_until_redis_answers(tmp_path: Path) -> None:
    from tests.support.services import free_port, start_service

    env = {"DOCSUM_WORKER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    worker = start_service("worker", tmp_path, env, wait=False)
    try:
        worker.wait_alive()
        r = httpx.get(f"{worker.url}/readyz", timeout=10)
        assert r.status_code == 503, r.text
    finally:
        assert worker.stop() in (0, -signal.SIGTERM)
