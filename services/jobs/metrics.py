"""The async jobs' metrics (their names are fixed with the chart's autoscaling and alerts).

``docsum_jobs_pending`` and ``docsum_jobs_oldest_pending_age_seconds`` describe the shared
queue, so every worker exports the same value: aggregate them with ``max()``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: From a 1-page image to a few hundred scanned pages behind a backlog.
JOB_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0)

SUBMITTED = Counter(
    "docsum_jobs_submitted_total", "Async jobs accepted (202) by the gateway; a repeat is not."
)
COMPLETED = Counter(
    "docsum_jobs_completed_total",
    "Jobs finished by this worker, by outcome (succeeded, failed, cancelled) and reason "
    '("" on success; upstream, bad_input, dead_letter, deleted, ...).',
    ["outcome", "reason"],
)
DEAD_LETTERED = Counter(
    "docsum_jobs_dead_lettered_total",
    "Jobs failed for good after max_attempts attempts, their last error kept.",
)
IN_PROGRESS = Gauge("docsum_jobs_in_progress", "Jobs this worker is running now.")
PENDING = Gauge(
    "docsum_jobs_pending",
    "Jobs in the queue not finished: not yet taken plus taken and not acknowledged (the "
    "same value from every worker; aggregate with max()).",
)
OLDEST_AGE = Gauge(
    "docsum_jobs_oldest_pending_age_seconds",
    "Age of the oldest job in the queue not finished, in seconds; 0 when none (aggregate "
    "with max()).",
)
DURATION = Histogram(
    "docsum_jobs_duration_seconds",
    "Time from a job's submission to its end, by outcome, in seconds.",
    ["outcome"],
    buckets=JOB_BUCKETS,
)
PAGES = Counter("docsum_jobs_pages_total", "Pages read by this worker's jobs.")
