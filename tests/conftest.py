"""Shared fixtures: real services started as processes on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from docsum.common.probe import wait_ready

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveService:
    """A ``docsum serve <name>`` child process and where it listens."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        try:
            wait_ready(self.url, timeout_s, alive=lambda: self.proc.poll() is None)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{self.name}: {exc}\n{self.logs()[-4000:]}") from None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_service(
    name: str, tmp: Path, env: dict[str, str] | None = None, wait: bool = True
) -> LiveService:
    """Start ``docsum serve name`` on a free port with ``DOCSUM_<NAME>_*`` overrides."""
    port = free_port()
    prefix = f"DOCSUM_{name.upper()}_"
    full_env = {**os.environ, f"{prefix}PORT": str(port), "HF_HUB_OFFLINE": "1"}
    full_env.update(env or {})
    log_path = tmp / f"{name}-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "docsum.cli", "serve", name],
        env=full_env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    svc = LiveService(name, port, proc, log_path)
    if wait:
        svc.wait_ready()
    return svc


@pytest.fixture(scope="session")
def summarizer_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    svc = start_service(
        "summarizer",
        tmp_path_factory.mktemp("summarizer"),
        {
            "DOCSUM_SUMMARIZER_BATCH__MAX_WAIT_MS": "20",
            "DOCSUM_SUMMARIZER_MAX_TEXT_BYTES": "200000",
        },
    )
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def ocr_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    svc = start_service(
        "ocr",
        tmp_path_factory.mktemp("ocr"),
        {
            "DOCSUM_OCR_BATCH__MAX_WAIT_MS": "20",
            "DOCSUM_OCR_MAX_BODY_BYTES": "2000000",
            "DOCSUM_OCR_MAX_PIXELS": "20000000",
        },
    )
    yield svc
    svc.stop()


#: The API key of the test gateways (its SHA-256 is what their keys file holds).
GATEWAY_KEY = "test-key-not-a-secret"


def start_gateway(
    tmp: Path,
    backends: dict[str, list[dict[str, object]]],
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> LiveService:
    """A gateway over ``backends`` (the backends file's JSON) accepting ``GATEWAY_KEY``."""
    import hashlib
    import json

    tmp.mkdir(parents=True, exist_ok=True)
    keys = tmp / "api-keys"
    keys.write_text(f"# test key\ntests:{hashlib.sha256(GATEWAY_KEY.encode()).hexdigest()}\n")
    backends_file = tmp / "backends.json"
    backends_file.write_text(json.dumps(backends))
    full_env = {
        "DOCSUM_GATEWAY_API_KEYS_FILE": str(keys),
        "DOCSUM_GATEWAY_BACKENDS_FILE": str(backends_file),
        "DOCSUM_GATEWAY_PROBE_INTERVAL_S": "0.5",
        **(env or {}),
    }
    return start_service("gateway", tmp, full_env, wait=wait)


@pytest.fixture(scope="session")
def gateway_service(
    tmp_path_factory: pytest.TempPathFactory,
    summarizer_service: LiveService,
    ocr_service: LiveService,
) -> Iterator[LiveService]:
    """The gateway in front of the real OCR and summarizer services (one stable version)."""
    svc = start_gateway(
        tmp_path_factory.mktemp("gateway"),
        {
            "ocr": [{"url": ocr_service.url, "version": "stable", "weight": 100}],
            "summarizer": [{"url": summarizer_service.url, "version": "stable", "weight": 100}],
        },
    )
    yield svc
    svc.stop()
