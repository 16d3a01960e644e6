"""The worker's settings: environment variables prefixed ``DOCSUM_WORKER_``.

A worker runs the gateway's document pipeline, so it reads the same pipeline settings (PDF
limits, OCR concurrency, the upstreams' timeouts and its ``BACKENDS_FILE``) under its own
prefix; the settings below are its own. The gateway's request settings (API keys, rate
limits, CORS) do not apply to it.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ..gateway.settings import GatewaySettings


class WorkerSettings(GatewaySettings):
    model_config = SettingsConfigDict(env_prefix="DOCSUM_WORKER_", env_nested_delimiter="__")

    port: int = Field(8083, ge=1, le=65535)
    #: Jobs one worker runs at once. Their pages meet in the OCR service's batches, so a
    #: few at once keep it busy; each holds its document in memory (up to max_body_bytes).
    concurrency: int = Field(2, ge=1, le=64)
    #: Seconds a job taken by a worker may go without its heartbeat before another worker
    #: claims it (a worker that died mid-job); a live worker renews it every third of this.
    visibility_timeout_s: float = Field(60.0, gt=0)
    #: Attempts of one job (each take by a worker counts); past it the job fails as
    #: ``dead_letter`` with its last error.
    max_attempts: int = Field(3, ge=1, le=100)
    #: Seconds one read of the queue blocks waiting for a job.
    poll_block_s: float = Field(1.0, gt=0, le=30)
    #: Seconds after SIGTERM the current job may take to finish; then it is handed back.
    drain_s: float = Field(60.0, ge=0)
    #: Seconds between updates of the queue's gauges (backlog, oldest job's age).
    gauges_interval_s: float = Field(5.0, gt=0)
