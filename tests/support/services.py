"""Processes serving HTTP on 127.0.0.1: a free port, ``docsum serve <name>`` with
``DOCSUM_<NAME>_*`` settings, and a wait until a URL answers 200; and what tests ask of them
(the test gateways' key, a document summarized, a counter read)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]

#: The API key of the test gateways (its SHA-256 is what their keys file holds).
GATEWAY_KEY = "test-key-not-a-secret"
#: The headers that let a call through a test gateway.
AUTH = {"X-API-Key": GATEWAY_KEY}
#: A gateway's backends file: each upstream's versions (url, version, weight).
Backends = dict[str, list[dict[str, object]]]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers_ok(url: str, timeout_s: float = 2.0) -> bool:
    """Whether a GET of ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        return False


def wait_until_ok(
    url: str, timeout_s: float = 180.0, alive: Callable[[], bool] | None = None
) -> None:
    """Poll ``url`` until it answers 200.

    Raises TimeoutError after ``timeout_s`` seconds, or RuntimeError as soon as ``alive``
    (e.g. "the child process still runs") turns false.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if alive is not None and not alive():
            raise RuntimeError(f"{url}: the process stopped before it answered")
        if answers_ok(url):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout_s:g} s")
        time.sleep(0.1)


@dataclass
class LiveService:
    """A child process serving HTTP on 127.0.0.1:``port``, its output in ``log_path``."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_ok(self, path: str, timeout_s: float) -> None:
        """Wait until ``path`` answers 200; RuntimeError with the log's tail if it does not."""
        try:
            wait_until_ok(self.url + path, timeout_s, alive=lambda: self.proc.poll() is None)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{self.name}: {exc}\n{self.logs()[-4000:]}") from None

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        self.wait_until_ok("/readyz", timeout_s)

    def wait_alive(self, timeout_s: float = 60.0) -> None:
        """Wait for /livez only: a gateway whose upstreams are down is alive, not ready."""
        self.wait_until_ok("/livez", timeout_s)

    def stop(self, grace_s: float = 30.0) -> int:
        """SIGTERM (the service drains), SIGKILL after ``grace_s``; the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def spawn(
    name: str, command: Sequence[str], port: int, log_path: Path, env: dict[str, str] | None = None
) -> LiveService:
    """Start ``command`` (which will listen on ``port``) from the repository root."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return LiveService(name, port, proc, log_path)


def start_service(
    name: str,
    tmp: Path,
    env: dict[str, str] | None = None,
    wait: bool = True,
    port: int | None = None,
) -> LiveService:
    """``docsum serve name`` on ``port`` (a free one if None) with ``DOCSUM_<NAME>_*``
    overrides from ``env``; waited for until ready unless ``wait`` is false."""
    port = port or free_port()
    full_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        **(env or {}),
        f"DOCSUM_{name.upper()}_PORT": str(port),
    }
    command = [sys.executable, "-m", "docsum.cli", "serve", name]
    svc = spawn(name, command, port, tmp / f"{name}-{port}.log", full_env)
    if wait:
        svc.wait_ready()
    return svc


#: Deadline of the tests' services: what the tests check is not the product's default deadline
#: (tests of deadlines set their own), and a busy CI machine can be several times slower.
PATIENT_S = "600"

#: The deadlines of the tests' gateways (see PATIENT_S); ``env`` may set others.
GATEWAY_DEADLINES = {
    "DOCSUM_GATEWAY_REQUEST_TIMEOUT_S": PATIENT_S,
    "DOCSUM_GATEWAY_OCR__TIMEOUT_S": PATIENT_S,
    "DOCSUM_GATEWAY_SUMMARIZER__TIMEOUT_S": PATIENT_S,
}


def start_gateway(
    tmp: Path,
    backends: dict[str, list[dict[str, object]]],
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> LiveService:
    """A gateway over ``backends`` (the backends file's JSON) accepting ``GATEWAY_KEY``."""
    tmp.mkdir(parents=True, exist_ok=True)
    keys = tmp / "api-keys"
    keys.write_text(f"# test key\ntests:{hashlib.sha256(GATEWAY_KEY.encode()).hexdigest()}\n")
    backends_file = tmp / "backends.json"
    backends_file.write_text(json.dumps(backends))
    full_env = {
        "DOCSUM_GATEWAY_API_KEYS_FILE": str(keys),
        "DOCSUM_GATEWAY_BACKENDS_FILE": str(backends_file),
        "DOCSUM_GATEWAY_PROBE_INTERVAL_S": "0.5",
        **GATEWAY_DEADLINES,
        **(env or {}),
    }
    return start_service("gateway", tmp, full_env, wait=wait)


def summarize_document(
    gateway_url: str,
    file: tuple[str, bytes, str],
    headers: dict[str, str] = AUTH,
    timeout_s: float = 120.0,
    **form: str,
) -> dict[str, Any]:
    """POST ``file`` (name, bytes, media type) and the fields ``form`` to the gateway's
    /api/v1/documents:summarize; the answer's JSON, which must come with a 200."""
    r = httpx.post(
        f"{gateway_url}/api/v1/documents:summarize",
        headers=headers,
        files={"file": file},
        data=form,
        timeout=timeout_s,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def counter(service: LiveService, name: str, **labels: str) -> float:
    """The sum of a Prometheus counter's series of ``service`` that carry ``labels`` (0 if none)."""
    with urllib.request.urlopen(f"{service.url}/metrics", timeout=10) as r:
        text = r.read().decode()
    want = [f'{k}="{v}"' for k, v in sorted(labels.items())]
    total = 0.0
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series == name:  # no labels
            total += float(value)
        elif series.startswith(name + "{"):
            got = series[len(name) + 1 : -1].split(",")
            if all(part in got for part in want):
                total += float(value)
    return total


def start_gateway_alive(
    tmp: Path, backends: dict[str, list[dict[str, object]]], env: dict[str, str] | None = None
) -> LiveService:
    """A gateway waited for until alive only (its upstreams may be down or slow on purpose)."""
    svc = start_gateway(tmp, backends, env, wait=False)
    svc.wait_alive()
    return svc
