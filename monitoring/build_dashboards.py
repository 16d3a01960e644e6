"""Write docsum's Grafana dashboards (helm/docsum/files/dashboards/*.json) from the spec below.

This file is the one source of truth for the dashboards: edit it, then run ``make k8s-sync``
(this script, then k8s/ from the chart); ``--check`` exits 1 when the JSON files differ from
what this spec makes (tests/observability and ``make k8s-check`` run it). The JSON is what
Grafana loads: the chart's dashboard ConfigMaps read it, k8s/ is rendered from the chart.

Conventions: services are told apart by the scrape's ``job`` label; per-service dashboards
have a ``job`` variable filled from Prometheus (so a canary's own job shows up too). Every
dashboard has ``cluster`` and ``namespace`` variables and every series selector of every query
filters on them (:func:`scoped`, applied to each target): two installs never mix. A panel
that can only have data on a GPU says so in its description with :data:`GPU_TAG` (only with
async jobs: :data:`JOBS_TAG`); tests/observability checks that every other panel's queries
return data on a live stack.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "helm" / "docsum" / "files" / "dashboards"
#: Marks a panel that has data only where NVML sees a GPU.
GPU_TAG = "[requires: gpu]"
#: Marks a panel that has data only where async jobs run (Redis and workers: jobs.enabled).
JOBS_TAG = "[requires: jobs]"
#: Series of docsum's jobs only: a job name alone ("gateway") may be another app's too. The
#: ServiceMonitors copy the pods' app.kubernetes.io/part-of; the local scrape config sets it.
DOCSUM = 'app_kubernetes_io_part_of="docsum"'
#: docsum's scrape jobs (app.kubernetes.io/component on Kubernetes, the same names locally).
JOBS = f'job=~"gateway|ocr|summarizer|worker", {DOCSUM}'
#: What every series selector of every query is narrowed to (".*" also matches a series without
#: the label, as on the local stack).
SCOPE = 'cluster=~"$cluster", namespace=~"$namespace"'
#: Not user traffic: probes and scrapes.
PROBES = 'route!~"/livez|/readyz|/metrics"'
DS = {"type": "prometheus", "uid": "${datasource}"}

Panel = dict[str, Any]


#: Series names in queries: recorded (level:metric:ops), docsum's own, and the scrape's.
_SERIES = re.compile(
    r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+|docsum_[a-z0-9_]+|process_[a-z0-9_]+|up|ALERTS"
)
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
#: Keywords followed by a list of label names (never series).
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def scoped(expr: str) -> str:
    """``expr`` with :data:`SCOPE` added to every series selector; constants
    (``…:constant`` recording rules, which carry no namespace) are left as they are."""
    out: list[str] = []
    i = 0
    while i < len(expr):
        m = _IDENT.match(expr, i)
        if expr[i] == '"':
            end = expr.index('"', i + 1) + 1
        elif m and m.group() in _LABEL_LISTS and "(" in expr[m.end() : m.end() + 2]:
            end = expr.index(")", m.end()) + 1
        elif m and _SERIES.fullmatch(m.group()) and not m.group().endswith(":constant"):
            end, matchers = m.end(), SCOPE
            if expr.startswith("{", end):
                close = expr.index("}", end)
                matchers = f"{expr[end + 1 : close]}, {SCOPE}"
                end = close + 1
            out.append(f"{m.group()}{{{matchers}}}")
            i = end
            continue
        elif m:
            end = m.end()
        else:
            end = i + 1
        out.append(expr[i:end])
        i = end
    return "".join(out)


def target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {"datasource": DS, "expr": scoped(expr), "legendFormat": legend, "refId": ref, **extra}


def _targets(queries: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [target(e, legend, chr(ord("A") + i)) for i, (e, legend) in enumerate(queries)]


def timeseries(
    title: str,
    queries: list[tuple[str, str]],
    unit: str,
    description: str,
    w: int = 12,
    h: int = 8,
    stack: bool = False,
    max_value: float | None = None,
) -> Panel:
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 15 if stack else 0,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        },
    }
    if max_value is not None:
        defaults["max"] = max_value
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": _targets(queries),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "_size": (w, h),
    }


def stat(
    title: str,
    expr: str,
    unit: str,
    description: str,
    legend: str = "",
    w: int = 6,
    h: int = 4,
    thresholds: list[tuple[float | None, str]] | None = None,
) -> Panel:
    steps = [{"value": v, "color": c} for v, c in (thresholds or [(None, "green")])]
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(expr, legend, instant=True)],
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        },
        "_size": (w, h),
    }


def table(title: str, expr: str, description: str, w: int = 12, h: int = 6) -> Panel:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(expr, "", format="table", instant=True)],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True},
        "transformations": [
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True}, "renameByName": {"Value": "replicas"}},
            }
        ],
        "_size": (w, h),
    }


def heatmap(title: str, expr: str, unit: str, description: str, w: int = 12, h: int = 8) -> Panel:
    return {
        "type": "heatmap",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(expr, "{{le}}", format="heatmap")],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {
            "calculate": False,
            "yAxis": {"unit": unit},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
        },
        "_size": (w, h),
    }


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


def gpu(panel: Panel) -> Panel:
    """Mark a panel as one that has data only with a GPU."""
    panel["description"] = f"{panel['description']} {GPU_TAG}"
    return panel


def jobs(panel: Panel) -> Panel:
    """Mark a panel as one that has data only where async jobs run."""
    panel["description"] = f"{panel['description']} {JOBS_TAG}"
    return panel


def jobs_panels() -> list[Panel]:
    """The async jobs: flow, backlog, age, duration (issue 17's workers and queue)."""
    rate = "[$__rate_interval]"
    return [
        row("Async jobs"),
        jobs(
            timeseries(
                "Jobs submitted, completed and failed /s",
                [
                    (f"sum(rate(docsum_jobs_submitted_total{rate}))", "submitted"),
                    (
                        f"sum by (outcome) (rate(docsum_jobs_completed_total{rate}))",
                        "{{outcome}}",
                    ),
                ],
                "ops",
                "Jobs accepted by the gateway (202) and finished by the workers, by outcome "
                "(succeeded, failed, cancelled).",
                w=8,
            )
        ),
        jobs(
            timeseries(
                "Failed jobs /s by reason",
                [
                    (
                        "sum by (reason) (rate(docsum_jobs_completed_total"
                        f'{{outcome="failed"}}{rate}))',
                        "{{reason}}",
                    )
                ],
                "ops",
                "Why jobs fail: upstream, bad_input, dead_letter (attempts used up), expired.",
                w=8,
                stack=True,
            )
        ),
        jobs(
            timeseries(
                "Backlog and jobs running",
                [
                    ("max(docsum_jobs_pending)", "pending (the queue)"),
                    ("sum(docsum_jobs_in_progress)", "running (all workers)"),
                    (f'count(up{{job="worker", {DOCSUM}}} == 1)', "workers up"),
                ],
                "short",
                "Jobs not yet finished in the queue (every worker reports it alike: the max; "
                "the workers' HPA scales on it), those being run now, and the workers.",
                w=8,
            )
        ),
        jobs(
            timeseries(
                "Oldest unfinished job",
                [("max(docsum_jobs_oldest_pending_age_seconds)", "age")],
                "s",
                "Age of the oldest job waiting or running (DocsumJobsWaitingTooLong fires over "
                "15 minutes).",
                w=12,
            )
        ),
        jobs(
            timeseries(
                "Job duration, submit to done: p50 / p95 / p99",
                [
                    (
                        f"histogram_quantile({q}, sum by (le) (rate("
                        f'docsum_jobs_duration_seconds_bucket{{outcome="succeeded"}}{rate})))',
                        f"p{int(float(q) * 100)}",
                    )
                    for q in ("0.5", "0.95", "0.99")
                ],
                "s",
                "End to end, queue wait included, of the jobs that succeeded.",
                w=12,
            )
        ),
    ]


def _layout(panels: list[Panel]) -> list[Panel]:
    """Flow the panels left to right, 24 columns wide; rows start a new line."""
    x = y = line_h = 0
    out = []
    for i, p in enumerate(panels, 1):
        w, h = p.pop("_size")
        if x + w > 24 or p["type"] == "row":
            x, y, line_h = 0, y + line_h, 0
        p = {"id": i, "gridPos": {"x": x, "y": y, "w": w, "h": h}, **p}
        out.append(p)
        x += w
        line_h = max(line_h, h)
        if p["type"] == "row":
            x, y, line_h = 0, y + h, 0
    return out


def _query_var(name: str, label: str, query: str, multi: bool = True) -> dict[str, Any]:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-var"},
        "refresh": 2,  # on time range change
        "multi": multi,
        "includeAll": multi,
        "sort": 1,
        "current": {},
        "options": [],
    }


def _scope_vars() -> list[dict[str, Any]]:
    """$cluster and $namespace: one of each, or All (".*", which also matches no label at all:
    a single cluster without a `cluster` label, the local stack without namespaces)."""
    out = []
    for name, label, query in (
        ("cluster", "Cluster", f"label_values(up{{{JOBS}}}, cluster)"),
        ("namespace", "Namespace", f'label_values(up{{{JOBS}, cluster=~"$cluster"}}, namespace)'),
    ):
        var = _query_var(name, label, query, multi=False)
        var.update(includeAll=True, allValue=".*")
        out.append(var)
    return out


def _job_var(service: str) -> dict[str, Any]:
    """$job: the service's jobs (a canary's own job shows up too) in the chosen scope."""
    return _query_var(
        "job", "Service", f'label_values(up{{job=~"{service}.*", {DOCSUM}, {SCOPE}}}, job)'
    )


def dashboard(
    uid: str, title: str, description: str, panels: list[Panel], variables: list[dict[str, Any]]
) -> dict[str, Any]:
    datasource_var = {
        "type": "datasource",
        "name": "datasource",
        "label": "Prometheus",
        "query": "prometheus",
        "current": {},
        "options": [],
        "refresh": 1,
    }
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["docsum"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "links": [
            {
                "type": "dashboards",
                "title": "docsum",
                "tags": ["docsum"],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "annotations": {"list": []},
        "templating": {"list": [datasource_var, *_scope_vars(), *variables]},
        "panels": _layout(panels),
    }


# ---------------------------------------------------------------------------------------------
# Panels shared by the per-service dashboards ($job is the service's job variable).


def http_panels(routes_hint: str) -> list[Panel]:
    sel = f'job=~"$job", {PROBES}'
    return [
        row("Requests"),
        timeseries(
            "Requests/s by route and status",
            [
                (
                    f"sum by (route, status) (rate(docsum_http_requests_total{{{sel}}}"
                    "[$__rate_interval]))",
                    "{{route}} {{status}}",
                )
            ],
            "reqps",
            f"Answered requests per second ({routes_hint}); probes and scrapes left out.",
            stack=True,
        ),
        timeseries(
            "Latency by route: p50 / p95 / p99",
            [
                (
                    f"histogram_quantile({q}, sum by (le, route) (rate("
                    f"docsum_http_request_duration_seconds_bucket{{{sel}}}[$__rate_interval])))",
                    f"{{{{route}}}} p{int(float(q) * 100)}",
                )
                for q in ("0.5", "0.95", "0.99")
            ]
            + [
                (
                    "route:docsum_slo_p99_latency_seconds:constant and on (route) "
                    '(max by (route) (job_route:docsum_http_requests:rate5m{job=~"$job"}) > 0)',
                    "{{route}} p99 SLO",
                )
            ],
            "s",
            "From request start to the last byte of the response, per route, with the p99 SLO "
            "of the routes that had traffic in the last 5 minutes.",
        ),
        timeseries(
            "5xx ratio by route",
            [
                (
                    'job_route:docsum_http_request_errors:ratio_rate5m{job=~"$job"}',
                    "{{job}} {{route}}",
                )
            ],
            "percentunit",
            "Share of requests answered 5xx over 5 minutes (DocsumHighErrorRatio fires over 5 %).",
        ),
        timeseries(
            "In flight",
            [('sum by (job) (docsum_http_requests_in_flight{job=~"$job"})', "{{job}}")],
            "short",
            "Requests being served right now, every replica summed.",
        ),
    ]


def batcher_panels(model_hint: str) -> list[Panel]:
    sel = 'job=~"$job"'
    return [
        row("Dynamic batcher"),
        heatmap(
            "Batch size",
            "sum by (le) (increase(docsum_inference_batch_size_bucket"
            f"{{{sel}}}[$__rate_interval]))",
            "short",
            f"Items per model call ({model_hint}). Full batches at the top under load mean the "
            "model is the bottleneck.",
            w=8,
        ),
        timeseries(
            "Mean batch size",
            [
                (
                    f"sum by (model) (rate(docsum_inference_batch_size_sum{{{sel}}}"
                    "[$__rate_interval])) / sum by (model) (rate("
                    f"docsum_inference_batch_size_count{{{sel}}}[$__rate_interval]))",
                    "{{model}}",
                )
            ],
            "short",
            "Items per model call, averaged.",
            w=8,
        ),
        timeseries(
            "Queue depth",
            [(f"sum by (job, model) (docsum_inference_queue_depth{{{sel}}})", "{{job}} {{model}}")],
            "short",
            "Items waiting for the model, every replica summed (the OCR HPA's signal, per pod).",
            w=8,
        ),
        timeseries(
            "Queue wait p95",
            [
                (
                    "histogram_quantile(0.95, sum by (le, model) (rate("
                    f"docsum_inference_queue_wait_seconds_bucket{{{sel}}}[$__rate_interval])))",
                    "{{model}}",
                )
            ],
            "s",
            "Time an item waits before its batch starts (DocsumQueueSaturated fires over 1 s).",
            w=8,
        ),
        timeseries(
            "Items by outcome",
            [
                (
                    "sum by (model, outcome) (rate(docsum_inference_items_total"
                    f"{{{sel}}}[$__rate_interval]))",
                    "{{model}} {{outcome}}",
                )
            ],
            "ops",
            "Items through the model per second: ok, error (the item failed), rejected "
            "(queue full → 503).",
            w=8,
            stack=True,
        ),
        timeseries(
            "Stage latency p95",
            [
                (
                    "histogram_quantile(0.95, sum by (le, stage) (rate("
                    f"docsum_inference_stage_duration_seconds_bucket{{{sel}}}[$__rate_interval])))",
                    "{{stage}}",
                )
            ],
            "s",
            "Wall time of each inference stage, per batch (or per document).",
            w=8,
        ),
    ]


def process_panels() -> list[Panel]:
    sel = f'job=~"$job", {DOCSUM}'
    return [
        row("Process"),
        timeseries(
            "CPU used",
            [(f"rate(process_cpu_seconds_total{{{sel}}}[$__rate_interval])", "{{instance}}")],
            "short",
            "CPU cores busy per replica (compare with its CPU limit and torch threads).",
            w=8,
        ),
        timeseries(
            "Resident memory",
            [(f"process_resident_memory_bytes{{{sel}}}", "{{instance}}")],
            "bytes",
            "Resident set size per replica (compare with its memory limit).",
            w=8,
        ),
        table(
            "Model versions",
            'job_name_version_device:docsum_model_info:count{job=~"$job"}',
            "Replicas per model name, version and device (docsum_model_info).",
            w=8,
            h=8,
        ),
    ]


# ---------------------------------------------------------------------------------------------
# The dashboards.


def overview() -> dict[str, Any]:
    panels = [
        row("Health"),
        stat(
            "Targets up",
            f"sum(up{{{JOBS}}})",
            "short",
            "docsum replicas Prometheus can scrape.",
        ),
        stat(
            "Targets down",
            f"count(up{{{JOBS}}} == 0) or vector(0)",
            "short",
            "docsum replicas Prometheus cannot scrape (DocsumTargetDown after 5 minutes).",
            thresholds=[(None, "green"), (1, "red")],
        ),
        stat(
            "docsum alerts firing",
            'count(ALERTS{alertname=~"Docsum.*", alertstate="firing"}) or vector(0)',
            "short",
            "Alerts of helm/docsum/files/rules/docsum.rules.yml firing now; see docs/runbook.md.",
            thresholds=[(None, "green"), (1, "red")],
        ),
        stat(
            "5xx ratio, all services",
            # From the counts, not the per-route ratios: an idle route's ratio is NaN (0/0),
            # and one NaN makes a sum NaN.
            '(sum(job_route_status:docsum_http_requests:rate5m{status=~"5.."}) or vector(0))'
            " / sum(job_route:docsum_http_requests:rate5m)",
            "percentunit",
            "Share of all requests answered 5xx over 5 minutes.",
            thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
        ),
        row("Traffic"),
        timeseries(
            "Requests/s by service",
            [("sum by (job) (job_route:docsum_http_requests:rate5m)", "{{job}}")],
            "reqps",
            "Requests answered per second by each service (5-minute rate), probes left out. "
            "Gateway traffic reaches OCR and the summarizer again as upstream calls.",
        ),
        timeseries(
            "Requests/s by route",
            [("job_route:docsum_http_requests:rate5m", "{{job}} {{route}}")],
            "reqps",
            "Requests answered per second per route (5-minute rate).",
        ),
        row("Errors"),
        timeseries(
            "5xx ratio by service",
            [("job:docsum_http_request_errors:ratio_rate5m", "{{job}}")],
            "percentunit",
            "Share of requests answered 5xx (5-minute window). DocsumHighErrorRatio fires per "
            "route over 5 %.",
        ),
        timeseries(
            "Responses/s by service and status",
            [
                (
                    "sum by (job, status) (job_route_status:docsum_http_requests:rate5m)",
                    "{{job}} {{status}}",
                )
            ],
            "reqps",
            "Every status code: 4xx are the callers' errors (401 no key, 413 too large, "
            "422 invalid, 429 rate-limited), 5xx are ours.",
            stack=True,
        ),
        row("Latency"),
        timeseries(
            "p99 latency by route, with its SLO",
            [
                ("job_route:docsum_http_request_duration_seconds:p99_rate5m", "{{job}} {{route}}"),
                (
                    "route:docsum_slo_p99_latency_seconds:constant and on (route) "
                    "(max by (route) (job_route:docsum_http_requests:rate5m) > 0)",
                    "SLO {{route}}",
                ),
            ],
            "s",
            "99th percentile over 5 minutes; the dashed SLO lines are the "
            "route:docsum_slo_p99_latency_seconds:constant rules (DocsumLatencyP99OverSLO).",
            w=8,
        ),
        timeseries(
            "p95 latency by route",
            [("job_route:docsum_http_request_duration_seconds:p95_rate5m", "{{job}} {{route}}")],
            "s",
            "95th percentile over 5 minutes.",
            w=8,
        ),
        timeseries(
            "p50 latency by route",
            [("job_route:docsum_http_request_duration_seconds:p50_rate5m", "{{job}} {{route}}")],
            "s",
            "Median over 5 minutes.",
            w=8,
        ),
        row("Saturation"),
        timeseries(
            "Requests in flight",
            [("job:docsum_http_requests_in_flight:sum", "{{job}}")],
            "short",
            "Requests being served right now by each service, every replica summed.",
            w=8,
        ),
        timeseries(
            "Inference queue depth (max replica)",
            [("job_model:docsum_inference_queue_depth:max", "{{job}} {{model}}")],
            "short",
            "Items waiting for the model on the busiest replica.",
            w=8,
        ),
        timeseries(
            "Inference queue wait p95",
            [("job_model:docsum_inference_queue_wait_seconds:p95_rate5m", "{{job}} {{model}}")],
            "s",
            "How long items wait for a batch (DocsumQueueSaturated fires over 1 s).",
            w=8,
        ),
        timeseries(
            "Items refused (queue full)",
            [("job_model:docsum_inference_items_rejected:ratio_rate5m", "{{job}} {{model}}")],
            "percentunit",
            "Share of items refused with 503 because the queue was full "
            "(DocsumQueueSaturated fires over 1 %).",
            w=8,
        ),
        timeseries(
            "CPU used by service",
            [
                (
                    f"sum by (job) (rate(process_cpu_seconds_total{{{JOBS}}}[$__rate_interval]))",
                    "{{job}}",
                )
            ],
            "short",
            "CPU cores busy, every replica summed.",
            w=8,
        ),
        timeseries(
            "Memory by service",
            [
                (
                    f"sum by (job) (process_resident_memory_bytes{{{JOBS}}})",
                    "{{job}}",
                )
            ],
            "bytes",
            "Resident memory, every replica summed.",
            w=8,
        ),
        table(
            "Model versions",
            "job_name_version_device:docsum_model_info:count",
            "Replicas serving each model name, version and device.",
            w=24,
        ),
        *jobs_panels(),
    ]
    return dashboard(
        "docsum-overview",
        "docsum / Platform overview",
        "Traffic, errors, latency and saturation of every docsum service.",
        panels,
        [],
    )


def ocr() -> dict[str, Any]:
    sel = 'job=~"$job"'
    panels = [
        row("Throughput"),
        timeseries(
            "Pages/s",
            [
                (
                    f"sum by (job) (rate(docsum_ocr_pages_total{{{sel}}}[$__rate_interval]))",
                    "{{job}}",
                )
            ],
            "ops",
            "Pages read per second (a line-mode image counts as a page).",
            w=8,
        ),
        timeseries(
            "Lines/s",
            [
                (
                    f"sum by (job) (rate(docsum_ocr_lines_total{{{sel}}}[$__rate_interval]))",
                    "{{job}}",
                )
            ],
            "ops",
            "Text lines recognized per second.",
            w=8,
        ),
        timeseries(
            "Lines per page",
            [
                (
                    f"sum by (job) (rate(docsum_ocr_lines_total{{{sel}}}[$__rate_interval])) / "
                    f"sum by (job) (rate(docsum_ocr_pages_total{{{sel}}}[$__rate_interval]))",
                    "{{job}}",
                )
            ],
            "short",
            "How dense the pages are: OCR time grows with lines, not pages.",
            w=8,
        ),
        *http_panels("/v1/ocr"),
        *batcher_panels("an item is one text line"),
        row("GPU"),
        gpu(
            timeseries(
                "GPU utilization",
                [(f"docsum_gpu_utilization_ratio{{{sel}}}", "{{instance}} gpu {{gpu}}")],
                "percentunit",
                "Fraction of time the GPU was busy (NVML); the OCR HPA scales on it.",
                max_value=1,
            )
        ),
        gpu(
            timeseries(
                "GPU memory",
                [
                    (f"docsum_gpu_memory_used_bytes{{{sel}}}", "{{instance}} gpu {{gpu}} used"),
                    (f"docsum_gpu_memory_total_bytes{{{sel}}}", "{{instance}} gpu {{gpu}} total"),
                ],
                "bytes",
                "GPU memory used and in total (NVML); DocsumGPUMemoryNearFull fires over 90 %.",
            )
        ),
        *process_panels(),
    ]
    return dashboard(
        "docsum-ocr",
        "docsum / OCR",
        "The OCR service: pages and lines, latency, the line batcher, GPU.",
        panels,
        [_job_var("ocr")],
    )


def summarizer() -> dict[str, Any]:
    sel = 'job=~"$job"'
    panels = [
        row("Throughput"),
        timeseries(
            "Documents/s",
            [
                (
                    "sum by (job) (rate(docsum_inference_items_total"
                    f'{{{sel}, outcome="ok"}}[$__rate_interval]))',
                    "{{job}}",
                )
            ],
            "ops",
            "Documents summarized per second.",
            w=8,
        ),
        timeseries(
            "Stage share of time",
            [
                (
                    "sum by (stage) (rate(docsum_inference_stage_duration_seconds_sum"
                    f"{{{sel}}}[$__rate_interval]))",
                    "{{stage}}",
                )
            ],
            "percentunit",
            "Seconds per second spent in each stage (split, embed, rank): which stage the CPU "
            "goes to.",
            w=8,
            stack=True,
        ),
        timeseries(
            "Mean stage time per batch",
            [
                (
                    "sum by (stage) (rate(docsum_inference_stage_duration_seconds_sum"
                    f"{{{sel}}}[$__rate_interval])) / sum by (stage) (rate("
                    f"docsum_inference_stage_duration_seconds_count{{{sel}}}[$__rate_interval]))",
                    "{{stage}}",
                )
            ],
            "s",
            "Mean wall time of each stage per model call.",
            w=8,
        ),
        *http_panels("/v1/summarize"),
        *batcher_panels("an item is one document"),
        *process_panels(),
    ]
    return dashboard(
        "docsum-summarizer",
        "docsum / Summarizer",
        "The summarizer: documents/s, stages (split, embed, rank), latency, the batcher.",
        panels,
        [_job_var("summarizer")],
    )


def gateway() -> dict[str, Any]:
    up_sel = 'upstream=~"$upstream", version=~"$version"'
    gw = 'job=~"$job"'
    panels = [
        row("Public API"),
        timeseries(
            "Requests/s by route and status",
            [
                (
                    f"sum by (route, status) (rate(docsum_http_requests_total{{{gw}, {PROBES}}}"
                    "[$__rate_interval]))",
                    "{{route}} {{status}}",
                )
            ],
            "reqps",
            "Requests to /api/v1/* per second, by status (401 no key, 429 rate-limited, "
            "413/415 refused uploads).",
            stack=True,
        ),
        timeseries(
            "Latency by route: p50 / p99",
            [
                (
                    f"histogram_quantile({q}, sum by (le, route) (rate("
                    f"docsum_http_request_duration_seconds_bucket{{{gw}, {PROBES}}}"
                    "[$__rate_interval])))",
                    f"{{{{route}}}} p{int(float(q) * 100)}",
                )
                for q in ("0.5", "0.99")
            ],
            "s",
            "Whole-request latency at the gateway, upstream calls included.",
        ),
        timeseries(
            "Refused: auth failures and rate limits",
            [
                (
                    f"sum(rate(docsum_gateway_auth_failures_total{{{gw}}}[$__rate_interval]))",
                    "401 no or bad API key",
                ),
                (
                    f"sum(rate(docsum_gateway_rate_limited_total{{{gw}}}[$__rate_interval]))",
                    "429 over the key's rate",
                ),
            ],
            "reqps",
            "Requests refused before reaching an upstream.",
            w=8,
        ),
        timeseries(
            "5xx ratio by route",
            [(f"job_route:docsum_http_request_errors:ratio_rate5m{{{gw}}}", "{{route}}")],
            "percentunit",
            "Share of gateway requests answered 5xx (5-minute window).",
            w=8,
        ),
        timeseries(
            "In flight",
            [(f"sum(docsum_http_requests_in_flight{{{gw}}})", "in flight")],
            "short",
            "Requests being served by the gateway right now.",
            w=8,
        ),
        row("Upstreams"),
        timeseries(
            "Upstream calls/s by status",
            [
                (
                    "sum by (upstream, version, status) (rate(docsum_upstream_requests_total"
                    f"{{{up_sel}}}[$__rate_interval]))",
                    "{{upstream}} {{version}} {{status}}",
                )
            ],
            "reqps",
            "Every attempt to call a backend, by HTTP status or 'error' (no answer).",
            stack=True,
        ),
        timeseries(
            "Upstream latency p50 / p99",
            [
                (
                    f"histogram_quantile({q}, sum by (le, upstream) (rate("
                    f"docsum_upstream_request_duration_seconds_bucket{{{up_sel}}}"
                    "[$__rate_interval])))",
                    f"{{{{upstream}}}} p{int(float(q) * 100)}",
                )
                for q in ("0.5", "0.99")
            ],
            "s",
            "One call to a backend, until its body was read.",
        ),
        timeseries(
            "Retries/s",
            [
                (
                    f"upstream_version:docsum_upstream_retries:rate5m{{{up_sel}}}",
                    "{{upstream}} {{version}}",
                )
            ],
            "ops",
            "Calls sent again after a connection error or a 503 (5-minute rate).",
            w=8,
        ),
        timeseries(
            "Circuit open",
            [
                (
                    f"max by (upstream, version) (docsum_upstream_circuit_open{{{up_sel}}})",
                    "{{upstream}} {{version}}",
                )
            ],
            "short",
            "1 while at least one pod of this upstream version is cut off by its circuit "
            "breaker (DocsumUpstreamCircuitOpen after 5 minutes).",
            w=8,
            max_value=1,
        ),
        timeseries(
            "Endpoints by circuit",
            [
                (
                    "min by (upstream, version) "
                    f'(docsum_upstream_endpoints{{circuit="closed", {up_sel}}})',
                    "{{upstream}} {{version}} closed",
                ),
                (
                    "max by (upstream, version) "
                    f'(docsum_upstream_endpoints{{circuit="open", {up_sel}}})',
                    "{{upstream}} {{version}} open",
                ),
            ],
            "short",
            "The pods each upstream version resolves to (its headless Service), by circuit, "
            "as the worst-off gateway or worker pod sees them: the fewest closed, the most "
            "open. None closed while there are endpoints: DocsumUpstreamVersionDown after "
            "2 minutes.",
            w=8,
        ),
        row("Canary vs stable"),
        timeseries(
            "Traffic share by version",
            [
                (
                    "sum by (upstream, version) (rate(docsum_upstream_requests_total"
                    f"{{{up_sel}}}[$__rate_interval])) / ignoring (version) group_left () "
                    "sum by (upstream) (rate(docsum_upstream_requests_total"
                    '{upstream=~"$upstream"}[$__rate_interval]))',
                    "{{upstream}} {{version}}",
                )
            ],
            "percentunit",
            "Share of each upstream's calls that went to each version: follows the weights in "
            "the backends file (90/10 canary, 0/100 after a blue/green flip).",
            w=8,
            max_value=1,
        ),
        timeseries(
            "Error ratio by version",
            [
                (
                    f"upstream_version:docsum_upstream_errors:ratio_rate5m{{{up_sel}}}",
                    "{{upstream}} {{version}}",
                )
            ],
            "percentunit",
            "Share of calls answered 5xx or not answered, per version (5-minute window). "
            "DocsumCanaryWorseThanStable fires past the canary gate's margin "
            "(gate:docsum_canary_max_error_ratio_increase:constant).",
            w=8,
        ),
        timeseries(
            "p99 by version",
            [
                (
                    "upstream_version:docsum_upstream_request_duration_seconds:p99_rate5m"
                    f"{{{up_sel}}}",
                    "{{upstream}} {{version}} p99",
                ),
                (
                    "upstream_version:docsum_upstream_request_duration_seconds:p50_rate5m"
                    f"{{{up_sel}}}",
                    "{{upstream}} {{version}} p50",
                ),
            ],
            "s",
            "Upstream call latency per version (5-minute window). DocsumCanaryWorseThanStable "
            "fires at canary p99 > the canary gate's ratio × stable's "
            "(gate:docsum_canary_max_p99_ratio:constant).",
            w=8,
        ),
        table(
            "Model versions behind the gateway",
            'job_name_version_device:docsum_model_info:count{job=~"ocr|summarizer"}',
            "Replicas serving each model version (docsum_model_info of OCR and summarizer).",
            w=24,
        ),
    ]
    return dashboard(
        "docsum-gateway",
        "docsum / Gateway",
        "The public API: routes, refusals, upstream calls, and canary against stable.",
        panels,
        [
            _job_var("gateway"),
            _query_var(
                "upstream",
                "Upstream",
                f"label_values(docsum_upstream_requests_total{{{SCOPE}}}, upstream)",
            ),
            _query_var(
                "version",
                "Version",
                "label_values(docsum_upstream_requests_total"
                f'{{upstream=~"$upstream", {SCOPE}}}, version)',
            ),
        ],
    )


DASHBOARDS = {
    "docsum-overview.json": overview,
    "docsum-ocr.json": ocr,
    "docsum-summarizer.json": summarizer,
    "docsum-gateway.json": gateway,
}


def render() -> dict[str, str]:
    """File name → the JSON text it must hold."""
    return {
        name: json.dumps(make(), indent=2, ensure_ascii=False) + "\n"
        for name, make in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if the JSON files drifted")
    args = p.parse_args(argv)
    wanted = render()
    if args.check:
        stale = [
            n
            for n, text in wanted.items()
            if not (OUT / n).is_file() or (OUT / n).read_text(encoding="utf-8") != text
        ]
        extra = sorted(p.name for p in OUT.glob("*.json") if p.name not in wanted)
        for n in stale:
            sys.stderr.write(f"{OUT / n} differs from monitoring/build_dashboards.py\n")
        for n in extra:
            sys.stderr.write(f"{OUT / n} is not made by monitoring/build_dashboards.py\n")
        if stale or extra:
            sys.stderr.write("run: python monitoring/build_dashboards.py\n")
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for stray in OUT.glob("*.json"):
        if stray.name not in wanted:
            stray.unlink()
    for name, text in wanted.items():
        (OUT / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
