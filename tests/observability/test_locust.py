"""The load tests run for real: every Locust shape, distributed runs, and Locust as its users
run it (from the root or loadtests/, locust.conf, --tags, the API key).

Locust runs as a subprocess (importing it here would monkey-patch this process with gevent)
against a small threaded HTTP server standing in for the summarizer, whose delay we choose:
that is how open-loop arrivals are told apart from closed-loop users.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from loadtests import report
from tests.support.commands import run
from tests.support.services import ROOT, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


# --------------------------------------------------------------------------------------------
# A stand-in summarizer, and Locust run against it


class _Handler(BaseHTTPRequestHandler):
    server: _FakeSummarizer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with self.server.lock:
            self.server.keys.add(self.headers.get("x-api-key"))
            self.server.open += 1
            self.server.peak = max(self.server.peak, self.server.open)
        time.sleep(self.server.delay_s)
        with self.server.lock:
            self.server.open -= 1
            self.server.count += 1
        body = b'{"summary": "s", "sentences": [], "model": {"name": "x", "version": "1"}}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


class _FakeSummarizer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, delay_s: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.open = self.peak = self.count = 0
        self.keys: set[str | None] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def fake() -> Iterator[_FakeSummarizer]:
    server = _FakeSummarizer(0.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _run_locust(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``locust --headless --only-summary`` with ``args``, run in ``cwd``."""
    command = [sys.executable, "-m", "locust", "--headless", "--only-summary", *args]
    return run(command, timeout_s=90, cwd=cwd, env=env)


def locust(
    tmp: Path, fake: _FakeSummarizer, shape: str | None, *args: str
) -> tuple[dict[str, Any], str]:
    """Run Locust headless on the summarize route of ``fake``; (summary, log)."""
    files = "loadtests/locustfile.py" + (f",loadtests/shapes/{shape}.py" if shape else "")
    out = tmp / f"{shape}-summary.json"
    done = _run_locust(
        ROOT, "-f", files,
        "--host", "http://127.0.0.1:9", "--target", "direct", "--summarizer-host", fake.url,
        "--routes", "summarize", "--summary-json", str(out), "--exit-code-on-error", "0",
        "--page-dpi", "30", *args,
    )  # fmt: skip
    assert done.returncode == 0 and out.is_file(), done.stdout + done.stderr
    return json.loads(out.read_text()), done.stderr


def _user_counts(log: str) -> list[int]:
    return [
        int(line.split("updating to ")[1].split(" users")[0])
        for line in log.splitlines()
        if "Shape test updating to" in line
    ]


def test_open_loop_keeps_its_rate_when_the_server_is_slow(
    tmp_path: Path, fake: _FakeSummarizer
) -> None:
    fake.delay_s = 0.5
    summary, _ = locust(
        tmp_path, fake, "arrival", "--run-time", "3s", "--arrival-rate", "20",
        "--arrival-process", "uniform",
    )  # fmt: skip
    [entry] = summary["entries"]
    # 20/s for 3 s, whatever the 0.5 s answers: one closed-loop user would manage 6.
    assert 55 <= entry["requests"] <= 61 and entry["failures"] == 0
    assert fake.peak >= 8  # ~10 requests open at once
    assert min(int(k) for k in entry["response_times_ms"]) >= 490


def test_open_loop_counts_what_it_could_not_send(tmp_path: Path, fake: _FakeSummarizer) -> None:
    fake.delay_s = 1.0
    summary, _ = locust(
        tmp_path, fake, "arrival", "--run-time", "2s", "--arrival-rate", "10",
        "--arrival-process", "uniform", "--max-in-flight", "2",
    )  # fmt: skip
    [entry] = summary["entries"]
    dropped = sum(e["occurrences"] for e in summary["errors"] if e["error"].startswith("dropped:"))
    assert entry["requests"] <= 4  # two at a time, 1 s each, for 2 s
    assert dropped >= 14  # the other arrivals are failures, not silently skipped
    [result] = report.judge(summary, report.load_slos())
    assert result.error_ratio > 0.7


def test_step_ramp_and_spike_shapes_change_the_users(tmp_path: Path, fake: _FakeSummarizer) -> None:
    fake.delay_s = 0.05
    _, log = locust(
        tmp_path, fake, "step", "--run-time", "4s", "--users", "4", "--step-users", "1",
        "--step-s", "1", "SummarizeUser",
    )  # fmt: skip
    assert _user_counts(log) == [1, 2, 3, 4]
    _, log = locust(
        tmp_path, fake, "ramp", "--run-time", "4s", "--users", "6", "--ramp-s", "3",
        "SummarizeUser",
    )  # fmt: skip
    counts = _user_counts(log)
    assert counts == sorted(counts) and counts[-1] == 6 and len(counts) >= 3
    summary, log = locust(
        tmp_path, fake, "spike", "--run-time", "5s", "--users", "5", "--spike-base", "1",
        "--spike-s", "1", "SummarizeUser",
    )  # fmt: skip
    assert _user_counts(log) == [1, 5, 1]
    assert summary["entries"][0]["requests"] > 0


def test_open_loop_runs_distributed_and_stops_on_the_master_s_clock(
    tmp_path: Path, fake: _FakeSummarizer
) -> None:
    """Master + worker, as in k8s/components/loadgen: the worker does not know --run-time."""
    fake.delay_s = 0.2
    port = str(free_port())
    files = "loadtests/locustfile.py,loadtests/shapes/arrival.py"
    # The worker gets the master's --page-dpi, as the deployment gives both the same options:
    # its payloads are then made at start-up, not while its user spawns (which, on a busy CPU,
    # blocks it past the master's heartbeat timeout).
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "locust", "-f", files, "--worker", "--master-port", port,
            "--page-dpi", "30",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        summary, _ = locust(
            tmp_path, fake, "arrival", "--master", "--master-bind-port", port,
            "--expect-workers", "1", "--run-time", "4s", "--arrival-rate", "10",
            "--arrival-process", "uniform",
        )  # fmt: skip
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
    [entry] = summary["entries"]
    # 10/s from when the worker's user started (a second or more after the master's clock, on a
    # busy machine) until the master's 4 s were up.
    span = entry["last_request_time"] - entry["start_time"]
    assert entry["requests"] >= 10 and entry["failures"] == 0
    assert 7 <= (entry["requests"] - 1) / span <= 13
    # Sending stopped on the master's clock: a worker that missed it would send until the
    # shape's end (4 s + --drain-s 30 s + 5 s).
    assert span < 4 + 10


# --------------------------------------------------------------------------------------------
# Locust as its users run it: from the root or loadtests/, locust.conf, --tags, the API key


def _spawned(log: str) -> dict[str, int]:
    [line] = [x for x in log.splitlines() if "All users spawned: " in x]
    return dict(json.loads(line.split("All users spawned: ")[1].split(" (")[0]))


@pytest.mark.parametrize("where", ["root", "loadtests"])
def test_locust_runs_from_the_root_and_from_loadtests(
    tmp_path: Path, fake: _FakeSummarizer, where: str
) -> None:
    """From the root with -f and --config; from loadtests/ with nothing: Locust finds
    locustfile.py and locust.conf there itself."""
    out = tmp_path / "summary.json"
    files = ["-f", "loadtests/locustfile.py", "--config", "loadtests/locust.conf"]
    done = _run_locust(
        ROOT if where == "root" else ROOT / "loadtests",
        *(files if where == "root" else []),
        "--run-time", "3s", "--target", "direct", "--summarizer-host", fake.url,
        "--routes", "summarize", "--page-dpi", "30", "--summary-json", str(out),
        "--spawn-rate", "10",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [entry] = json.loads(out.read_text())["entries"]
    assert entry["name"] == "/v1/summarize" and entry["requests"] > 0
    # locust.conf's 10 users (no --users given), all of the one route chosen.
    assert _spawned(done.stderr) == {"SummarizeUser": 10}


def test_tags_spawn_only_the_users_of_those_routes(tmp_path: Path, fake: _FakeSummarizer) -> None:
    out = tmp_path / "summary.json"
    done = _run_locust(
        ROOT, "-f", "loadtests/locustfile.py", "--host", "http://127.0.0.1:9", "--run-time", "3s",
        "--users", "4",
        "--spawn-rate", "4", "--target", "direct", "--summarizer-host", fake.url,
        "--tags", "summarize", "--page-dpi", "30", "--summary-json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _spawned(done.stderr) == {"SummarizeUser": 4}
    names = {e["name"] for e in json.loads(out.read_text())["entries"]}
    assert names == {"/v1/summarize"} and fake.count > 0


def test_a_missing_api_key_stops_the_run_at_start(fake: _FakeSummarizer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCSUM_API_KEY")}
    start = time.monotonic()
    done = _run_locust(
        ROOT, "-f", "loadtests/locustfile.py", "--run-time", "30s", "--host", fake.url,
        "--page-dpi", "30", env=env,
    )  # fmt: skip
    assert done.returncode == 1 and time.monotonic() - start < 30
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "no API key for the gateway: set DOCSUM_API_KEY" in errors[0]
    assert fake.count == 0  # not one request sent


@pytest.mark.parametrize("worker_key", ["worker-key", ""])
def test_workers_keep_their_own_key_under_a_master_without_one(
    tmp_path: Path, fake: _FakeSummarizer, worker_key: str
) -> None:
    """As in k8s/components/loadgen: the key is mounted on the workers only. The master's
    options (no key) replace the worker's when the run starts; the worker still sends its own,
    and a worker without one sends nothing."""
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCSUM_API_KEY")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--worker",
         "--master-port", port],
        cwd=ROOT, env={**env, "DOCSUM_API_KEY": worker_key}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        done = _run_locust(
            ROOT, "-f", "loadtests/locustfile.py", "--master", "--master-bind-port", port,
            "--expect-workers", "1", "--host", fake.url, "--routes", "summarize",
            "--run-time", "3s", "--users", "2", "--spawn-rate", "2", "--page-dpi", "30",
            env=env,
        )  # fmt: skip
        _, worker_log = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert "no API key on the master" in done.stderr
    if worker_key:
        assert fake.count > 0 and fake.keys == {"worker-key"}
    else:
        assert fake.count == 0 and "no API key for the gateway" in worker_log
