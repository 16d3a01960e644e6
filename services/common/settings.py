"""Settings shared by every docsum service.

Each service subclasses :class:`ServiceSettings` once, with its own environment prefix
(``DOCSUM_SUMMARIZER_``, ``DOCSUM_OCR_``, ``DOCSUM_GATEWAY_``). Values are validated when the
service starts, so a bad setting stops it with a message instead of failing a request later.
No other module reads ``os.environ``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service has: where it listens, how it logs, how it drains."""

    model_config = SettingsConfigDict(
        extra="ignore", validate_default=True, env_nested_delimiter="__"
    )

    #: Address to listen on (``0.0.0.0`` in a container).
    host: str = "127.0.0.1"
    #: TCP port to listen on.
    port: int = Field(8080, ge=1, le=65535)
    #: Level of the JSON log lines on stderr.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: Seconds uvicorn waits for in-flight requests after SIGTERM before closing connections.
    shutdown_grace_s: float = Field(25.0, ge=0)
    #: Seconds a request may take in total before it is answered 504.
    request_timeout_s: float = Field(60.0, gt=0)
    #: Largest request body accepted, in bytes (413 above it).
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    #: Seconds a client may take to send the whole request body after its headers (408 past
    #: it): bounds slow-drip uploads. 60 s carries 50 MB at 7 Mbit/s.
    body_timeout_s: float = Field(60.0, gt=0)
    #: Seconds a client may take to send a request's headers, counted from the connection's
    #: start or the previous response (the connection is closed past it): bounds slowloris
    #: and idle connections.
    header_timeout_s: float = Field(5.0, gt=0)
    #: Requests in flight past which new ones get 503 at once (idle connections do not
    #: count): a last guard on memory; the batchers' queues refuse work first.
    max_concurrency: int = Field(1000, ge=1)
    #: Open connections on ``port`` past which a new one is closed as soon as it is accepted.
    #: Lowered at start to fit the open-files limit.
    max_connections: int = Field(4096, ge=1)
    #: Open connections on ``port`` from one client address past which its new ones are
    #: closed at once; 0 → no such cap. Behind a proxy every client has the proxy's address:
    #: raise it (or 0) there.
    max_connections_per_client: int = Field(256, ge=0)
    #: Seconds an answer may sit unsent, the client reading none of it, before the
    #: connection is dropped: a client that never reads cannot hold a connection.
    write_timeout_s: float = Field(10.0, gt=0)
    #: Port of a second listener on ``host`` answering only ``/livez``, ``/readyz`` (with
    #: its reasons) and ``/metrics``, for the kubelet and Prometheus: connections on ``port``
    #: cannot starve it. Unset → none (probes use ``port``).
    probe_port: int | None = Field(None, ge=1, le=65535)
    #: Addresses of proxies whose ``X-Forwarded-For`` names the client (uvicorn's
    #: ``forwarded_allow_ips``; ``["*"]`` trusts any): per-client limits then count the
    #: client, not the proxy. Empty → the TCP peer is the client.
    forwarded_allow_ips: list[str] = Field(default_factory=list)
    #: FastAPI's own OpenTelemetry (spans, metrics and logs, sent where the standard OTEL_*
    #: variables say). Off by default: docsum's metrics are Prometheus', its logs JSON lines,
    #: and the check runs on every request.
    opentelemetry: bool = False

    @model_validator(mode="after")
    def _ports_differ(self) -> ServiceSettings:
        if self.probe_port is not None and self.probe_port == self.port:
            raise ValueError(f"probe_port and port are both {self.port}: give the probes their own")
        return self


class BatchSettings(BaseModel):
    """The dynamic batcher's knobs, embedded in a model service's settings.

    A plain model, not settings of its own: it is read from the service's environment
    (``DOCSUM_<SERVICE>_BATCH__MAX_WAIT_MS``), never from unprefixed variables.
    """

    model_config = ConfigDict(extra="forbid")

    #: Most items gathered into one model call.
    max_batch_size: int = Field(16, ge=1, le=1024)
    #: Longest an item waits for companions before the batch is run, in milliseconds.
    max_wait_ms: float = Field(5.0, ge=0, le=10_000)
    #: Items allowed to wait; past this the service answers 503 with Retry-After.
    max_queue_size: int = Field(256, ge=1)
    #: Seconds a client is told to wait when the queue is full.
    retry_after_s: int = Field(1, ge=1)


class ModelServiceSettings(ServiceSettings):
    """A service that runs a model behind the dynamic batcher."""

    #: "auto" picks CUDA when present, else CPU.
    device: str = "auto"
    #: Intra-op threads for torch on CPU; 0: the CPUs the process may use, capped by the
    #: container's CPU limit.
    torch_threads: int = Field(0, ge=0)
    #: Keep freed memory in the heap for reuse (see common/heap.py): faster forward passes,
    #: resident memory that stays at its peak.
    keep_freed_memory: bool = True
    batch: BatchSettings = Field(default_factory=BatchSettings)
