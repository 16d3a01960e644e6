"""The gateway's settings: environment variables prefixed ``DOCSUM_GATEWAY_``.

Which backends serve each upstream (and with which weight) is not a setting but a file,
``DOCSUM_GATEWAY_BACKENDS_FILE``, re-read while the gateway runs (canary and blue/green
changes need no restart); so are the API keys (``DOCSUM_GATEWAY_API_KEYS_FILE``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, FilePath
from pydantic_settings import SettingsConfigDict

from ..common.settings import ServiceSettings


class UpstreamSettings(BaseModel):
    """How the gateway talks to one upstream (all of its backends)."""

    #: Seconds one call to a backend may take, connect to last byte (504 past it).
    timeout_s: float = Field(60.0, gt=0)
    #: Seconds to open a TCP connection to a backend (then the next replica is tried).
    connect_timeout_s: float = Field(2.0, gt=0)
    #: Further attempts after a connection error or a 503, each on another replica if any.
    retries: int = Field(2, ge=0, le=10)
    #: First backoff before a retry, in milliseconds; doubles per attempt, full jitter.
    backoff_base_ms: float = Field(25.0, ge=0)
    #: Longest backoff before one retry, in milliseconds.
    backoff_max_ms: float = Field(500.0, ge=0)
    #: Consecutive failures (connection errors, timeouts, 5xx) that open a backend's circuit.
    breaker_failures: int = Field(5, ge=1)
    #: Seconds an open circuit refuses calls before one trial call is let through.
    breaker_open_s: float = Field(10.0, gt=0)
    #: Connections kept open to this upstream's backends, in all.
    max_connections: int = Field(256, ge=1)
    #: Idle keep-alive connections kept per upstream.
    max_keepalive: int = Field(64, ge=0)
    #: Seconds an idle keep-alive connection is reused; below the backends' own idle timeout
    #: (uvicorn closes idle connections after 5 s).
    keepalive_expiry_s: float = Field(4.0, ge=0)
    #: Seconds between resolutions of each backend URL's host into its addresses (a headless
    #: Service's name gives one per ready pod), each balanced, retried and circuit-broken on
    #: its own; a connection error asks again at once. 0: no resolution, one endpoint per URL
    #: connected to by name.
    resolve_interval_s: float = Field(5.0, ge=0)
    #: Seconds one resolution may take; past it, or on an error, the last good addresses stay.
    resolve_timeout_s: float = Field(2.0, gt=0)
    #: A file of ``<address> <name>...`` lines (the /etc/hosts format) read before DNS, again
    #: when it changes: a name listed there resolves to every address listed for it.
    resolve_hosts_file: Path | None = None
    #: PEM file of the CA certificates that ``https://`` backends' certificates are checked
    #: against (an in-cluster CA); unset → the public ones (certifi).
    tls_ca_file: FilePath | None = None


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DOCSUM_GATEWAY_", env_nested_delimiter="__")

    port: int = Field(8080, ge=1, le=65535)
    #: A PDF of a hundred scanned pages is tens of MB.
    max_body_bytes: int = Field(50 * 1024 * 1024, gt=0)
    #: JSON ``{"ocr": [{"url", "version", "weight"}], "summarizer": [...]}``; unset → the
    #: local services on 127.0.0.1:8081 and :8082, version "stable".
    backends_file: Path | None = None
    #: Lines ``<name>:<sha256 hex of the key>``, ``#`` comments. Required: no key, no access.
    api_keys_file: Path | None = None
    #: Seconds between checks of both files for changes; 0 → only on SIGHUP.
    reload_interval_s: float = Field(1.0, ge=0)
    #: Seconds between readiness probes of every backend (/readyz), in the background.
    probe_interval_s: float = Field(2.0, gt=0)
    #: Seconds one readiness probe may take.
    probe_timeout_s: float = Field(1.0, gt=0)
    #: Probes in a row without an answer in time before a ready backend leaves the rotation (a
    #: busy backend answers late); a refused connection or a non-200 answer takes it out at once.
    probe_late_limit: int = Field(3, ge=1)
    #: Sustained requests per second allowed per API key (token bucket refill rate).
    rate_limit_rps: float = Field(50.0, gt=0)
    #: Requests a key may send at once above the sustained rate (token bucket size).
    rate_limit_burst: int = Field(100, ge=1)
    #: Requests without a valid API key one client address may send at once before the next
    #: are answered 429 with Retry-After; a valid key is never held back by them.
    auth_failures_per_client: int = Field(20, ge=1)
    #: Seconds over which a client address gets its ``auth_failures_per_client`` back (one
    #: at a time, evenly).
    auth_failure_window_s: float = Field(60.0, gt=0)
    #: API key names (from the keys file) whose ``X-Docsum-Backend`` may pin a version that
    #: takes no traffic (weight 0: a canary before its first share, a drained version);
    #: anyone else's pin of one is answered 403.
    pin_any_version_keys: list[str] = Field(default_factory=list)
    #: Origins allowed by CORS (JSON list, e.g. ``["https://app.example.com"]``); empty → off.
    cors_origins: list[str] = Field(default_factory=list)
    ocr: UpstreamSettings = Field(default_factory=UpstreamSettings)
    summarizer: UpstreamSettings = Field(default_factory=lambda: UpstreamSettings(timeout_s=30.0))
    #: Pages of one PDF read (422 above it).
    pdf_max_pages: int = Field(100, ge=1)
    #: Resolution scanned PDF pages are rendered at for OCR (the recognizer reads ~300 dpi).
    pdf_render_dpi: int = Field(300, ge=72, le=600)
    #: A page that is one upright JPEG scan at this many dpi (min, max) is sent to OCR as that
    #: JPEG, not rendered; ``[0, 0]`` renders every page.
    pdf_scan_dpi_range: tuple[float, float] = (200.0, 450.0)
    #: Most pixels of one rendered page; larger pages are rendered at a lower resolution.
    pdf_max_render_pixels: int = Field(40_000_000, gt=0)
    #: A page whose text layer has fewer letters and digits than this is OCR'd instead.
    pdf_min_text_chars: int = Field(16, ge=1)
    #: Pages of one document sent to OCR at once. More helps when several OCR replicas (or a
    #: GPU) serve; on one CPU replica pages read in parallel only compete for its cores.
    ocr_page_concurrency: int = Field(2, ge=1, le=64)

    # What one request may cost (docs/reliability.md, "The cost of a request"). The request's
    # deadline is ``request_timeout_s``, sent to the services as ``X-Docsum-Deadline``.
    #: Largest JSON body of ``/api/v1/summarize``, in bytes (413 as soon as a body passes it):
    #: the summarizer reads at most 1 MB of text.
    summarize_max_body_bytes: int = Field(2 * 1024 * 1024, gt=0)
    #: Upload bytes held at once, over all requests; an upload that would pass it is refused
    #: with 503 and Retry-After before its body is read (a body in flight costs about twice
    #: its size in memory).
    max_inflight_body_bytes: int = Field(128 * 1024 * 1024, gt=0)
    #: Most pixels of the pages of one PDF rendered for OCR, estimated from the page sizes
    #: before any page is rendered (413 above it); 100 Letter pages at 300 dpi are 842 million.
    pdf_max_total_pixels: int = Field(900_000_000, gt=0)
    #: Most text of one document, in UTF-8 bytes (the summarizer's own limit): the rest is cut,
    #: and the answer's ``errors`` says so.
    max_text_bytes: int = Field(1_000_000, gt=0)
    #: Worker processes that read PDFs, one document each; more documents wait for one.
    pdf_workers: int = Field(2, ge=1, le=64)
    #: Resident memory a PDF worker may reach; past it the worker is stopped and the document
    #: answered 422 (a worker idles at about 40 MB).
    pdf_worker_max_rss_bytes: int = Field(320 * 1024 * 1024, gt=0)
    #: Seconds one step of a PDF's reading may take in its worker (opening it, one page's text
    #: or rendering); past it the worker is stopped and the document answered 422.
    pdf_page_timeout_s: float = Field(10.0, gt=0)
    #: Seconds a PDF worker may stay unused before it is stopped (its memory given back); the
    #: next PDF starts a new one, in about 0.2 s.
    pdf_worker_idle_s: float = Field(30.0, gt=0)
    #: Seconds without an upload after which freed memory is given back to the kernel
    #: (malloc_trim, see common/heap.py); 0 never does.
    trim_idle_s: float = Field(2.0, ge=0)

    # Async jobs (``documents:summarizeAsync``, ``/api/v1/operations``; docs/api.md).
    #: Redis holding the jobs' queue and state, e.g. ``redis://127.0.0.1:6379/0``; unset → the
    #: async routes answer 503 (the synchronous API works without it).
    redis_url: str | None = None
    #: A file holding Redis' password (a mounted Secret's ``password`` key); unset → none.
    redis_password_file: Path | None = None
    #: Seconds a finished job's state and result are kept, counted from its end.
    jobs_result_ttl_s: int = Field(24 * 3600, ge=1)
    #: Jobs of one API key queued or running at once (429 past it).
    jobs_max_pending_per_key: int = Field(100, ge=1)
    #: Bytes one API key may keep in the store: inputs of unfinished jobs plus results kept
    #: (429 past it).
    jobs_max_stored_bytes_per_key: int = Field(1024 * 1024 * 1024, ge=1)
    #: Longest ``?wait=`` of ``GET /api/v1/operations/{id}``, in seconds.
    jobs_max_wait_s: float = Field(60.0, gt=0)
