"""Process lifecycle over real HTTP: graceful drain on SIGTERM, `docsum up` start and stop."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.services import free_port, spawn, start_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LONG_TEXT = " ".join(
    f"Sentence number {i} talks about topic {i % 7} in some detail for the reader."
    for i in range(120)
)


#: The drain's and each request's time limit: long enough for four long documents read one at
#: a time on a CPU shared with other work (the test is about what a drain answers, not how fast).
GRACE_S = 600


@pytest.mark.timeout(GRACE_S + 120)
def test_sigterm_finishes_in_flight_requests_then_exits(tmp_path: Path) -> None:
    svc = start_service(
        "summarizer",
        tmp_path,
        {
            "DOCSUM_SUMMARIZER_BATCH__MAX_BATCH_SIZE": "1",
            "DOCSUM_SUMMARIZER_SHUTDOWN_GRACE_S": str(GRACE_S),
            "DOCSUM_SUMMARIZER_REQUEST_TIMEOUT_S": str(GRACE_S),
        },
    )
    results: list[int] = []

    def call() -> None:
        r = httpx.post(f"{svc.url}/v1/summarize", json={"text": LONG_TEXT}, timeout=GRACE_S)
        results.append(r.status_code)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    # Wait until all four are in flight (queued one at a time behind the model); the scrape
    # counts itself, hence five.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        scrape = httpx.get(f"{svc.url}/metrics", timeout=10).text
        in_flight = re.search(r"^docsum_http_requests_in_flight (\S+)$", scrape, re.M)
        if in_flight and float(in_flight.group(1)) >= 5:
            break
        time.sleep(0.02)
    svc.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(GRACE_S)
    assert results == [200, 200, 200, 200]
    # uvicorn re-raises the signal once drained, so the exit says "stopped by SIGTERM".
    assert svc.proc.wait(30) in (0, -signal.SIGTERM)
    assert "draining" in svc.logs() and "Finished server process" in svc.logs()
    with pytest.raises(httpx.ConnectError):  # new work goes elsewhere: nobody listens here now
        httpx.get(f"{svc.url}/livez", timeout=2)


def test_docsum_up_serves_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DOCSUM_SUMMARIZER_PORT": str(port)}
    command = [sys.executable, "-m", "docsum.cli", "up", "summarizer"]
    up = spawn("docsum up", command, port, tmp_path / "up.log", env)
    proc = up.proc
    try:
        up.wait_ready(120)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/summarize",
            json={"text": "Docsum runs locally. It has three services."},
            timeout=30,
        )
        assert r.status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/livez", timeout=2)
