"""Settings shared by every docsum service.

Each service subclasses :class:`ServiceSettings` once, with its own environment prefix
(``DOCSUM_SUMMARIZER_``, ``DOCSUM_OCR_``, ``DOCSUM_GATEWAY_``). Values are validated when the
service starts, so a bad setting stops it with a message instead of failing a request later.
No other module reads ``os.environ``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
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
    #: start or the previous response (the connection is closed past it): bounds slowloris.
    header_timeout_s: float = Field(10.0, gt=0)
    #: Open connections plus in-flight requests past which new ones get 503 at once (uvicorn's
    #: ``limit_concurrency``): a last guard on memory; the batchers' queues refuse work first.
    max_concurrency: int = Field(1000, ge=1)
    #: FastAPI's own OpenTelemetry (spans, metrics and logs, sent where the standard OTEL_*
    #: variables say). Off by default: docsum's metrics are Prometheus', its logs JSON lines,
    #: and the check runs on every request.
    opentelemetry: bool = False


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
    #: Intra-op threads for torch on CPU; 0 means torch's default (one per core).
    torch_threads: int = Field(0, ge=0)
    #: Keep freed memory in the heap for reuse (see common/heap.py): faster forward passes,
    #: resident memory that stays at its peak.
    keep_freed_memory: bool = True
    batch: BatchSettings = Field(default_factory=BatchSettings)
