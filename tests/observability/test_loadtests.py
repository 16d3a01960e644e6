"""The load tests themselves: payloads, SLO verdicts, and every Locust shape run for real.

Locust runs as a subprocess (importing it here would monkey-patch this process with gevent)
against a small threaded HTTP server standing in for the summarizer, whose delay we choose:
that is how open-loop arrivals are told apart from closed-loop users.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from PIL import Image

from loadtests import payloads, report
from tests.support.documents import png_bytes, scanned_pdf, tiff_bytes
from tests.support.services import ROOT, free_port

# --------------------------------------------------------------------------------------------
# Payloads


def test_pages_are_a4_at_300_dpi_with_dark_text() -> None:
    page = payloads.page_image(random.Random(1))
    assert page.size == (2480, 3508)
    dark = sum(page.histogram()[:128]) / (page.width * page.height)
    assert 0.02 < dark < 0.3  # ink, not a blank page, not a black one


def test_text_pdf_has_a_text_layer_and_scans_do_not() -> None:
    rng = random.Random(2)
    pdf = pdfium.PdfDocument(payloads.text_pdf(rng, 3))
    assert len(pdf) == 3
    text = pdf[1].get_textpage().get_text_range()
    assert len(text.split()) > 300
    scan = pdfium.PdfDocument(
        scanned_pdf([payloads.page_image(rng, 100), payloads.page_image(rng, 100)], 100)
    )
    assert len(scan) == 2
    assert scan[0].get_textpage().get_text_range().strip() == ""


def test_tiff_documents_have_one_frame_per_page() -> None:
    rng = random.Random(3)
    pages = [payloads.page_image(rng, 100) for _ in range(3)]
    png_bytes(pages[0])  # a page saved before must not spoil the TIFF
    with Image.open(io.BytesIO(tiff_bytes(pages))) as tiff:
        assert tiff.n_frames == 3


def test_articles_have_news_lengths_and_sentences() -> None:
    rng = random.Random(4)
    lengths = [payloads.article_words(rng) for _ in range(500)]
    assert min(lengths) >= 150 and max(lengths) <= 2000
    assert 500 < sorted(lengths)[250] < 700  # median ~600 words
    text = payloads.article(600, rng)
    assert 600 <= len(text.split()) < 800
    assert text.count(".") > 20 and "\n\n" in text


def test_multipart_bodies_carry_the_file_and_the_fields() -> None:
    up = payloads.multipart("a.png", b"\x89PNG-bytes", "image/png", {"mode": "page"}, "png")
    boundary = up.content_type.split("boundary=")[1]
    assert up.body.startswith(f"--{boundary}\r\n".encode())
    assert up.body.endswith(f"--{boundary}--\r\n".encode())
    assert b'name="mode"\r\n\r\npage\r\n' in up.body
    assert b'filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG-bytes\r\n' in up.body


# --------------------------------------------------------------------------------------------
# Verdicts


def test_percentile_is_locust_s() -> None:
    hist = {100: 98, 5000: 2}
    assert report.percentile(hist, 100, 0.50) == 100
    assert report.percentile(hist, 100, 0.95) == 100
    assert report.percentile(hist, 100, 0.99) == 5000


def _entry(name: str, hist: dict[int, int], failures: int = 0) -> dict[str, Any]:
    n = sum(hist.values())
    return {
        "method": "POST",
        "name": name,
        "requests": n,
        "failures": failures,
        "response_times_ms": {str(k): v for k, v in hist.items()},
        "start_time": 1000.0,
        "last_request_time": 1060.0,
    }


def test_judge_passes_fails_and_abstains() -> None:
    slos = report.load_slos()
    # slo.toml judges p99 and errors; a route may also limit its p95.
    slos["/api/v1/ocr"] = dataclasses.replace(slos["/api/v1/ocr"], p95_ms=3500)
    summary = {
        "entries": [
            _entry("/api/v1/summarize", {300: 95, 900: 5}),  # within 2.5 s
            _entry("/api/v1/ocr", {1500: 90, 6000: 10}),  # p99 6 s > 5 s
            _entry("/api/v1/documents:summarize", {3000: 5}),  # too few for a verdict
            _entry("/v1/summarize", {200: 100}),  # fast, but arrivals were dropped
            _entry("/elsewhere", {10: 50}),  # no SLO
        ],
        "errors": [
            {
                "method": "POST",
                "name": "/v1/summarize",
                "error": "dropped: 64 requests already in flight",
                "occurrences": 5,
            },
        ],
    }
    summary["entries"][3]["failures"] = 5
    results = {r.route: r for r in report.judge(summary, slos)}
    assert results["/api/v1/summarize"].verdict == "pass"
    assert results["/api/v1/ocr"].verdict == "FAIL"
    assert results["/api/v1/ocr"].broken == ["p95 6000 ms > 3500 ms", "p99 6000 ms > 5000 ms"]
    assert results["/api/v1/documents:summarize"].verdict == "too few requests"
    dropped = results["/v1/summarize"]
    assert (dropped.attempts, dropped.verdict) == (105, "FAIL")
    assert dropped.broken == ["errors 4.76% > 1.00%"]
    assert results["/elsewhere"].verdict == "no SLO"
    assert results["/api/v1/summarize"].rate_rps == pytest.approx(100 / 60)
    assert not report.passed(list(results.values()))


# --------------------------------------------------------------------------------------------
# Locust, for real, against a stand-in summarizer (seconds each: slow; a server on 127.0.0.1)


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


def locust(
    tmp: Path, fake: _FakeSummarizer, shape: str | None, *args: str
) -> tuple[dict[str, Any], str]:
    """Run Locust headless on the summarize route of ``fake``; (summary, log)."""
    files = "loadtests/locustfile.py" + (f",loadtests/shapes/{shape}.py" if shape else "")
    out = tmp / f"{shape}-summary.json"
    cmd = [
        sys.executable, "-m", "locust", "-f", files, "--headless", "--only-summary",
        "--host", "http://127.0.0.1:9", "--target", "direct", "--summarizer-host", fake.url,
        "--routes", "summarize", "--summary-json", str(out), "--exit-code-on-error", "0",
        "--page-dpi", "30", *args,
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0 and out.is_file(), done.stdout + done.stderr
    return json.loads(out.read_text()), done.stderr


def _user_counts(log: str) -> list[int]:
    return [
        int(line.split("updating to ")[1].split(" users")[0])
        for line in log.splitlines()
        if "Shape test updating to" in line
    ]


@pytest.mark.slow
@pytest.mark.integration
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


@pytest.mark.slow
@pytest.mark.integration
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


@pytest.mark.slow
@pytest.mark.integration
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


@pytest.mark.slow
@pytest.mark.integration
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


def _run_locust(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locust", "--headless", "--only-summary", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _spawned(log: str) -> dict[str, int]:
    [line] = [x for x in log.splitlines() if "All users spawned: " in x]
    return dict(json.loads(line.split("All users spawned: ")[1].split(" (")[0]))


@pytest.mark.slow
@pytest.mark.integration
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


@pytest.mark.slow
@pytest.mark.integration
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


@pytest.mark.slow
@pytest.mark.integration
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


@pytest.mark.slow
@pytest.mark.integration
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
