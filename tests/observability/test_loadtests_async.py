"""The async load test for real: ``make loadtest --routes summarize_async`` (loadtests/run.py)
against a gateway, a worker and Redis over the session's OCR and summarizer services.

Locust runs as a subprocess (importing it here would monkey-patch this process with gevent).
Nothing here depends on how fast the machine is: the runs are a few seconds long, and the jobs
still open at the end are waited for (``--stop-timeout``), so every job submitted is counted.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtests import report
from tests.support.commands import run
from tests.support.jobs import AUTH, Jobs, JobsFactory, RedisServer, start_jobs
from tests.support.services import GATEWAY_KEY, LiveService

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUBMIT = ("POST", "/api/v1/documents:summarizeAsync")
POLL = ("GET", "/api/v1/operations/{op_id}")
CANCEL = ("POST", "/api/v1/operations/{op_id}:cancel")
END_TO_END = ("JOB", "documents:summarizeAsync end-to-end")


@pytest.fixture(scope="module")
def jobs(make_jobs: JobsFactory) -> Jobs:
    """A gateway and one worker on database 5."""
    return make_jobs(5, workers=1)


def loadtest(tmp: Path, gateway: str, *args: str) -> tuple[int, str, dict[str, Any]]:
    """``python -m loadtests.run`` on the summarize_async route of ``gateway``: 2 closed-loop
    users for 4 s unless ``args`` say otherwise; (exit code, output, Locust's summary)."""
    out = tmp / "loadtest"
    done = run(
        [
            sys.executable, "-m", "loadtests.run", "--no-start", "--host", gateway,
            "--routes", "summarize_async", "--shape", "closed", "--users", "2",
            "--spawn-rate", "2", "--run-time", "4s", "--out", str(out), *args,
        ],
        timeout_s=280,
        env={**os.environ, "DOCSUM_API_KEY": GATEWAY_KEY},
    )  # fmt: skip
    summary_path = Path(f"{out}_summary.json")
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return done.returncode, done.stdout + done.stderr, summary


def _entries(summary: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["method"], e["name"]): e for e in summary["entries"]}


def _operations(jobs: Jobs) -> list[dict[str, Any]]:
    r = httpx.get(f"{jobs.gateway.url}/api/v1/operations?page_size=100", headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    ops: list[dict[str, Any]] = r.json()["operations"]
    return ops


def _new_operations(jobs: Jobs, before: int) -> list[dict[str, Any]]:
    """This key's operations on ``jobs`` but the first ``before`` made (newest first)."""
    ops = _operations(jobs)
    return ops[: len(ops) - before]


def test_async_jobs_are_submitted_waited_for_and_checked_end_to_end(
    tmp_path: Path, jobs: Jobs
) -> None:
    before = len(_operations(jobs))
    code, output, summary = loadtest(tmp_path, jobs.gateway.url)
    assert code == 0, output
    entries = _entries(summary)
    submit, polls, e2e = entries[SUBMIT], entries[POLL], entries[END_TO_END]
    # Each user's first job starts at once and every job is waited for: at least 2, all
    # counted end to end, none failed (a failure would carry the operation's error).
    assert e2e["requests"] >= 2 and e2e["requests"] == submit["requests"], summary
    assert (submit["failures"], polls["failures"], e2e["failures"]) == (0, 0, 0), summary
    assert summary["errors"] == []
    # A job is queued when submitted: its end is seen by a long poll (not a busy loop).
    assert e2e["requests"] <= polls["requests"] <= 3 * e2e["requests"], summary
    # The end-to-end time covers the submit and the polls of the same job.
    assert min(int(t) for t in e2e["response_times_ms"]) >= min(
        int(t) for t in submit["response_times_ms"]
    )
    # The server ran exactly those jobs, to success.
    ops = _new_operations(jobs, before)
    assert len(ops) == e2e["requests"]
    assert {op["metadata"]["state"] for op in ops} == {"succeeded"}
    # The verdict table judges the end-to-end entry against slo.toml's [jobs].
    assert END_TO_END[1] in report.load_slos()
    verdict = json.loads((tmp_path / "loadtest_verdict.json").read_text())
    row = next(r for r in verdict["routes"] if r["route"] == END_TO_END[1])
    assert row["verdict"] == "too few requests" and row["failures"] == 0


def test_open_loop_arrivals_of_jobs_are_all_waited_for(tmp_path: Path, jobs: Jobs) -> None:
    """The release check's shape: jobs arrive on a clock, each in its own greenlet; those
    still open at the end are waited for (run.py gives --drain-s the job timeout)."""
    before = len(_operations(jobs))
    code, output, summary = loadtest(
        tmp_path, jobs.gateway.url, "--shape", "arrival", "--arrival-rate", "1",
        "--run-time", "3s", "--", "--arrival-process", "uniform",
    )  # fmt: skip
    assert code == 0, output
    entries = _entries(summary)
    e2e = entries[END_TO_END]
    assert 2 <= e2e["requests"] <= 4 and e2e["failures"] == 0, summary
    assert entries[SUBMIT]["requests"] == e2e["requests"] and summary["errors"] == []
    ops = _new_operations(jobs, before)
    assert len(ops) == e2e["requests"]
    assert {op["metadata"]["state"] for op in ops} == {"succeeded"}


def test_a_job_that_never_ends_is_a_failure_and_is_cancelled(
    tmp_path: Path, redis_server: RedisServer, backends: dict[str, list[dict[str, object]]]
) -> None:
    """A gateway with no worker: every job stays queued until the client gives up."""
    idle = start_jobs(tmp_path / "idle", redis_server.empty_db(6), backends)
    try:
        code, output, summary = loadtest(
            tmp_path, idle.gateway.url, "--job-timeout-s", "2", "--", "--job-wait-s", "1"
        )
        assert code == 0, output
        entries = _entries(summary)
        e2e = entries[END_TO_END]
        assert e2e["requests"] >= 2 and e2e["failures"] == e2e["requests"], summary
        assert entries[CANCEL]["requests"] == e2e["requests"]
        assert entries[CANCEL]["failures"] == 0
        errors = {(e["method"], e["name"], e["error"]) for e in summary["errors"]}
        assert errors == {(*END_TO_END, "not done within 2 s (still queued); cancelled")}
        ops = _operations(idle)
        assert len(ops) == e2e["requests"]
        assert {op["metadata"]["state"] for op in ops} == {"cancelled"}
        # ... and the verdict says so (an error ratio of 100 %), whatever the SLO's numbers.
        row = next(
            r
            for r in json.loads((tmp_path / "loadtest_verdict.json").read_text())["routes"]
            if r["route"] == END_TO_END[1]
        )
        assert row["error_ratio"] == 1.0
    finally:
        idle.stop()


def test_a_gateway_without_async_jobs_is_refused_at_start(
    tmp_path: Path, gateway_service: LiveService
) -> None:
    code, output, summary = loadtest(tmp_path, gateway_service.url)
    assert code == 1 and summary == {}
    assert "does not serve async jobs" in output and "make redis" in output
