"""The gateway's own metrics (the kit's HTTP metrics come on top).

Upstream metrics are labelled by ``upstream`` and ``version`` — never by backend URL — so a
canary is judged against stable with a handful of series however many replicas run. The one
exception, ``docsum_upstream_endpoint_circuit_open``, names the endpoint (a pod's address): it
has one series per endpoint in use, removed when the endpoint leaves, so its cardinality is
the number of pods now, not of every pod that ever ran.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ..common.metrics import LATENCY_BUCKETS

UPSTREAM_REQUESTS = Counter(
    "docsum_upstream_requests_total",
    "Calls to upstream backends (each attempt), by HTTP status, or 'error' when none came.",
    ["upstream", "version", "status"],
)
UPSTREAM_DURATION = Histogram(
    "docsum_upstream_request_duration_seconds",
    "Time of one call to an upstream backend, until its response body was read, in seconds.",
    ["upstream", "version"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_RETRIES = Counter(
    "docsum_upstream_retries_total",
    "Calls sent again after a connection error or a 503.",
    ["upstream", "version"],
)
UPSTREAM_CIRCUIT_OPEN = Gauge(
    "docsum_upstream_circuit_open",
    "1 while the circuit of at least one backend of this upstream version is open, else 0.",
    ["upstream", "version"],
)
UPSTREAM_ENDPOINTS = Gauge(
    "docsum_upstream_endpoints",
    "Endpoints of this upstream version (the addresses its backend URLs resolve to: one per "
    "pod behind a headless Service), by circuit: closed, or open (open or half-open).",
    ["upstream", "version", "circuit"],
)
UPSTREAM_ENDPOINT_CIRCUIT_OPEN = Gauge(
    "docsum_upstream_endpoint_circuit_open",
    "1 while this endpoint's circuit is open or half-open, else 0; the series is removed "
    "when the endpoint leaves (its pod is gone from DNS).",
    ["upstream", "version", "endpoint"],
)
UPSTREAM_RESOLVE_ERRORS = Counter(
    "docsum_upstream_resolve_errors_total",
    "Resolutions of a backend URL's host that failed, timed out or came back empty (its last "
    "good addresses are kept).",
    ["upstream"],
)
RATE_LIMITED = Counter(
    "docsum_gateway_rate_limited_total",
    "Requests refused with 429 because their API key was over its rate limit.",
)
AUTH_FAILURES = Counter(
    "docsum_gateway_auth_failures_total",
    "Requests without a valid API key (none, or a wrong one): answered 401, or 429 once "
    "their client address is throttled.",
)
AUTH_THROTTLED = Counter(
    "docsum_gateway_auth_throttled_total",
    "Requests without a valid API key answered 429: their client address failed too often.",
)
PDF_WORKERS_RSS = Gauge(
    "docsum_gateway_pdf_workers_resident_memory_bytes",
    "Resident memory of the PDF worker processes together, in bytes (the gateway's own is "
    "process_resident_memory_bytes).",
)
PDF_WORKERS_STOPPED = Counter(
    "docsum_gateway_pdf_workers_stopped_total",
    "PDF worker processes stopped, by reason: memory, time, cancelled, crashed or unusable "
    "(mid-document), idle (unused for pdf_worker_idle_s).",
    ["reason"],
)
