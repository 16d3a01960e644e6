"""Processes of the local stack for fault tests: start, kill, restart, measure."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from tests.conftest import LiveService, start_gateway, start_service

#: The OCR settings of the tests' OCR services (as the session fixture's).
OCR_ENV = {
    "DOCSUM_OCR_BATCH__MAX_WAIT_MS": "20",
    "DOCSUM_OCR_MAX_BODY_BYTES": "2000000",
    "DOCSUM_OCR_MAX_PIXELS": "20000000",
}

#: ... and of the tests' summarizer.
SUMMARIZER_ENV = {
    "DOCSUM_SUMMARIZER_BATCH__MAX_WAIT_MS": "20",
    "DOCSUM_SUMMARIZER_MAX_TEXT_BYTES": "200000",
}

#: A gateway that never rate-limits (load and fuzz clients send back to back).
NO_RATE_LIMIT = {
    "DOCSUM_GATEWAY_RATE_LIMIT_RPS": "100000",
    "DOCSUM_GATEWAY_RATE_LIMIT_BURST": "100000",
}


def start_on_port(name: str, tmp: Path, port: int, env: dict[str, str]) -> LiveService:
    """``docsum serve name`` on a given port (a replica coming back where it was)."""
    prefix = f"DOCSUM_{name.upper()}_"
    svc = start_service(name, tmp, {**env, f"{prefix}PORT": str(port)}, wait=False)
    svc.port = port  # start_service chose another; the env above wins
    svc.wait_ready()
    return svc


def start_gateway_alive(
    tmp: Path, backends: dict[str, list[dict[str, object]]], env: dict[str, str]
) -> LiveService:
    """A gateway, waited for until it is alive (it may not be ready: its upstreams may be
    down or slow on purpose)."""
    svc = start_gateway(tmp, backends, env, wait=False)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{svc.url}/livez", timeout=1).status_code == 200:
                return svc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or svc.proc.poll() is not None:
            raise RuntimeError(f"gateway did not start:\n{svc.logs()[-3000:]}")
        time.sleep(0.1)


@dataclass(frozen=True)
class ProcStats:
    """A process's resources at one moment."""

    rss_bytes: int
    open_fds: int
    tcp_connections: int
    threads: int

    @classmethod
    def of(cls, pid: int) -> ProcStats:
        p = psutil.Process(pid)
        return cls(
            rss_bytes=int(p.memory_info().rss),
            open_fds=p.num_fds(),
            tcp_connections=len(p.net_connections(kind="tcp")),
            threads=p.num_threads(),
        )

    def to_dict(self) -> dict[str, int]:
        return self.__dict__.copy()


@dataclass
class Stack:
    """Summarizer, OCR and a gateway over them: the local stack, on free ports."""

    summarizer: LiveService
    ocr: LiveService
    gateway: LiveService

    @property
    def services(self) -> dict[str, LiveService]:
        return {"summarizer": self.summarizer, "ocr": self.ocr, "gateway": self.gateway}

    def stop(self) -> None:
        for svc in (self.gateway, self.ocr, self.summarizer):
            svc.stop()


def start_stack(tmp: Path, gateway_env: dict[str, str] | None = None) -> Stack:
    """The stack as the tests' session fixtures configure it (benches and soak use it)."""
    summarizer = start_service("summarizer", tmp, SUMMARIZER_ENV)
    ocr = start_service("ocr", tmp, OCR_ENV)
    gateway = start_gateway(
        tmp / "gateway",
        {
            "ocr": [{"url": ocr.url, "version": "stable", "weight": 100}],
            "summarizer": [{"url": summarizer.url, "version": "stable", "weight": 100}],
        },
        gateway_env,
    )
    return Stack(summarizer, ocr, gateway)
