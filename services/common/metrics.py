"""Every Prometheus metric docsum exports, defined once.

Naming follows Prometheus' guide: the ``docsum_`` prefix, base units (seconds, bytes),
counters ending in ``_total``, and no label whose values grow with users or documents.
The scrape adds ``job``/``pod``; metrics carry no service label of their own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

#: Latency buckets in seconds, from a cache hit to a 100-page document.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75,
    1.0, 1.5, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

HTTP_REQUESTS = Counter(
    "docsum_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "docsum_http_request_duration_seconds",
    "Time from request start to the end of the response body, in seconds.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge("docsum_http_requests_in_flight", "Requests being served right now.")
HTTP_CONNECTIONS = Gauge(
    "docsum_http_connections_open",
    "TCP connections open, by listener (public: the API port; probe: the probe port).",
    ["listener"],
)
HTTP_CONNECTIONS_CUT = Counter(
    "docsum_http_connections_cut_total",
    "Connections the server closed on its own, by reason: per_client_cap or connection_cap "
    "(closed as accepted), idle_timeout (no byte of a next request in time), header_timeout "
    "(a request head begun, not finished in time), write_timeout (the client read none of an "
    "answer in time).",
    ["listener", "reason"],
)
STAGE_DURATION = Histogram(
    "docsum_inference_stage_duration_seconds",
    "Time spent in one stage of inference for one batch (or one document), in seconds.",
    ["model", "stage"],
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "docsum_inference_batch_size",
    "Items gathered into one model call by the dynamic batcher.",
    ["model"],
    buckets=BATCH_BUCKETS,
)
QUEUE_DEPTH = Gauge(
    "docsum_inference_queue_depth",
    "Items waiting in the dynamic batcher's queue (the OCR autoscaling signal).",
    ["model"],
)
QUEUE_WAIT = Histogram(
    "docsum_inference_queue_wait_seconds",
    "Time an item waited in the queue before its batch started, in seconds.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
INFERENCE_ITEMS = Counter(
    "docsum_inference_items_total",
    "Items through the model, by outcome (ok, error, rejected).",
    ["model", "outcome"],
)
MODEL_INFO = Gauge(
    "docsum_model_info",
    "The model a pod serves; always 1.",
    ["name", "version", "device"],
)


@contextmanager
def stage_timer(model: str, stage: str) -> Iterator[None]:
    """Observe the wall time of the enclosed block as one ``stage`` of ``model``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        STAGE_DURATION.labels(model, stage).observe(time.perf_counter() - start)
