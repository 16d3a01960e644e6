"""The processes of the async jobs for tests and benchmarks: a real Redis server (from
.tools/redis, `make redis`), gateways on it, and workers over given OCR and summarizer services."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from docsum.jobs.redis_server import REDIS_SERVER, server_command
from tests.support.pace import wait_for
from tests.support.services import (
    AUTH,
    GATEWAY_KEY,
    ROOT,
    LiveService,
    start_gateway,
    start_service,
)
from tests.support.stack import NO_RATE_LIMIT

#: A second API key: it must never see the first one's operations.
OTHER_KEY = "other-key-not-a-secret"
OTHER = {"X-API-Key": OTHER_KEY}
#: What the worker tests set: a claim lost after 3 s, three attempts.
WORKER_ENV = {
    "DOCSUM_WORKER_VISIBILITY_TIMEOUT_S": "3",
    "DOCSUM_WORKER_MAX_ATTEMPTS": "3",
    "DOCSUM_WORKER_POLL_BLOCK_S": "0.5",
    "DOCSUM_WORKER_GAUGES_INTERVAL_S": "0.5",
    "DOCSUM_WORKER_DRAIN_S": "5",
    "DOCSUM_WORKER_PROBE_INTERVAL_S": "0.5",
}


class RedisServer:
    """redis-server on 127.0.0.1:``port``, its append-only file in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.proc: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def empty_db(self, db: int) -> str:
        """The URL of database ``db``, emptied (each group of tests has its own)."""
        import redis

        url = self.url(db)
        redis.Redis.from_url(url).flushdb()
        return url

    def start(self) -> None:
        binary = ROOT / REDIS_SERVER
        log = (self.data_dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            server_command(binary, self.port, self.data_dir), stdout=log, stderr=log
        )
        wait_for("redis answers PING", self.answers, 30)

    def answers(self) -> bool:
        cli = ROOT / ".tools/redis/bin/redis-cli"
        r = subprocess.run(
            [str(cli), "-p", str(self.port), "ping"], capture_output=True, timeout=5, check=False
        )
        return r.stdout.strip() == b"PONG"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


@dataclass
class Jobs:
    """A gateway and its workers on one Redis database."""

    tmp: Path
    redis_url: str
    backends: dict[str, list[dict[str, object]]]
    gateway: LiveService
    workers: list[LiveService] = field(default_factory=list)

    def start_worker(self, env: dict[str, str] | None = None) -> LiveService:
        backends = self.tmp / f"worker-backends-{len(self.workers)}.json"
        backends.write_text(json.dumps(self.backends))
        full = {
            "DOCSUM_WORKER_REDIS_URL": self.redis_url,
            "DOCSUM_WORKER_BACKENDS_FILE": str(backends),
            **WORKER_ENV,
            **(env or {}),
        }
        worker = start_service("worker", self.tmp, full)
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for svc in (*self.workers, self.gateway):
            svc.stop()

    # --- the API ----------------------------------------------------------------------------

    def submit(
        self,
        data: bytes,
        name: str = "page.png",
        headers: dict[str, str] | None = None,
        **form: str,
    ) -> httpx.Response:
        return httpx.post(
            f"{self.gateway.url}/api/v1/documents:summarizeAsync",
            headers={**AUTH, **(headers or {})},
            files={"file": (name, data, "application/octet-stream")},
            data=form,
            timeout=60,
        )

    def get(self, name: str, headers: dict[str, str] = AUTH, wait: str = "") -> httpx.Response:
        query = f"?wait={wait}" if wait else ""
        return httpx.get(f"{self.gateway.url}/api/v1/{name}{query}", headers=headers, timeout=60)

    def done(self, name: str, timeout_s: float = 300.0) -> dict[str, Any]:
        """The operation once done (long polls of 20 s)."""

        def check() -> dict[str, Any] | None:
            r = self.get(name, wait="20s")
            assert r.status_code == 200, r.text
            op: dict[str, Any] = r.json()
            return op if op["done"] else None

        result: dict[str, Any] = wait_for(f"{name} done", check, timeout_s)
        return result


def keys_file(tmp: Path) -> Path:
    path = tmp / "api-keys"
    path.write_text(
        "".join(
            f"{name}:{hashlib.sha256(key.encode()).hexdigest()}\n"
            for name, key in (("tests", GATEWAY_KEY), ("other", OTHER_KEY))
        )
    )
    return path


def start_jobs(
    tmp: Path,
    redis_url: str,
    backends: dict[str, list[dict[str, object]]],
    gateway_env: dict[str, str] | None = None,
) -> Jobs:
    """A gateway on ``redis_url`` accepting ``GATEWAY_KEY`` and ``OTHER_KEY`` (no worker)."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        **NO_RATE_LIMIT,
        "DOCSUM_GATEWAY_API_KEYS_FILE": str(keys_file(tmp)),
        "DOCSUM_GATEWAY_REDIS_URL": redis_url,
        **(gateway_env or {}),
    }
    gateway = start_gateway(tmp / "gateway", backends, env)
    return Jobs(tmp, redis_url, backends, gateway)


def redis_installed() -> bool:
    return (ROOT / REDIS_SERVER).exists()


#: ``make_jobs(db, workers=0, env=None)`` (the fixture of tests/conftest.py).
JobsFactory = Callable[..., Jobs]
