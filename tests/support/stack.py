"""The local stack on free ports (summarizer, OCR, a gateway over them) and what a process
uses: the tests' session fixtures, the fault tests, the benches and the soak run use it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil

from .services import PATIENT_S, LiveService, start_gateway, start_service

#: The OCR settings of the tests' OCR services.
OCR_ENV = {
    "DOCSUM_OCR_REQUEST_TIMEOUT_S": PATIENT_S,
    "DOCSUM_OCR_BATCH__MAX_WAIT_MS": "20",
    "DOCSUM_OCR_MAX_BODY_BYTES": "2000000",
    "DOCSUM_OCR_MAX_PIXELS": "20000000",
}

#: ... and of the tests' summarizer.
SUMMARIZER_ENV = {
    "DOCSUM_SUMMARIZER_REQUEST_TIMEOUT_S": PATIENT_S,
    "DOCSUM_SUMMARIZER_BATCH__MAX_WAIT_MS": "20",
    "DOCSUM_SUMMARIZER_MAX_TEXT_BYTES": "200000",
}

#: A gateway that never rate-limits (load and fuzz clients send back to back).
NO_RATE_LIMIT = {
    "DOCSUM_GATEWAY_RATE_LIMIT_RPS": "100000",
    "DOCSUM_GATEWAY_RATE_LIMIT_BURST": "100000",
}


def stable_backends(
    ocr: LiveService, summarizer: LiveService
) -> dict[str, list[dict[str, object]]]:
    """The gateway's backends file: one stable version of each service."""
    return {
        "ocr": [{"url": ocr.url, "version": "stable", "weight": 100}],
        "summarizer": [{"url": summarizer.url, "version": "stable", "weight": 100}],
    }


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
    """The stack as the tests' session fixtures configure it."""
    summarizer = start_service("summarizer", tmp, SUMMARIZER_ENV)
    ocr = start_service("ocr", tmp, OCR_ENV)
    gateway = start_gateway(tmp / "gateway", stable_backends(ocr, summarizer), gateway_env)
    return Stack(summarizer, ocr, gateway)
