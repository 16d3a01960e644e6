"""Dashboards and rules against reality: real services, real Prometheus, real Locust traffic.

The stack (OCR, summarizer, and a gateway whose backends file sends part of each upstream's
traffic to a "canary" version) runs on free ports on 127.0.0.1; Prometheus scrapes it every
second with monitoring/prometheus.yml's jobs and the shipped rules; Locust sends ~30 s of
traffic through the gateway on every route. Then every dashboard panel's query and every
recording rule must return data: a dashboard that shows nothing fails here, not in production.

Panels that can only have data on a GPU are marked in their description (test_rules.py keeps
that list to the two NVML panels); here they are still queried (they must parse) but may be
empty. The same goes for the two GPU recording rules below.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.observability.prometheus import DASHBOARDS, RULES, PrometheusServer, start_prometheus
from tests.support.pace import patient
from tests.support.services import ROOT, LiveService, start_gateway

pytestmark = [pytest.mark.slow, pytest.mark.integration]

GPU_TAG = "[requires: gpu]"
JOBS_TAG = "[requires: jobs]"
#: Recording rules over NVML metrics: no data on a machine without an NVIDIA GPU.
GPU_RULES = {
    "instance_gpu:docsum_gpu_memory_used_bytes:ratio": "NVML GPU memory; no GPU here",
    "job:docsum_gpu_utilization_ratio:avg": "NVML GPU utilization; no GPU here",
}
#: What Grafana puts in place of $__rate_interval for a 1 s scrape is well under this; a minute
#: keeps the whole Locust run inside every rate window while the queries run.
RATE_INTERVAL = "1m"
LOCUST_S = 30


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    summarizer_service: LiveService,
    ocr_service: LiveService,
) -> Iterator[tuple[LiveService, str]]:
    """A gateway over the session's OCR and summarizer, half stable, half canary each.

    The canary is the same process under another URL (localhost instead of 127.0.0.1): the
    gateway labels its calls version="canary", which is all the canary panels need.
    """
    tmp = tmp_path_factory.mktemp("obs-gateway")
    key = secrets.token_urlsafe(24)
    keys = tmp / "obs-api-keys"  # start_gateway writes its own "api-keys"
    keys.write_text(
        f"# a random key for this test run\nobs:{hashlib.sha256(key.encode()).hexdigest()}\n"
    )

    def pair(url: str) -> list[dict[str, object]]:
        return [
            {"url": url, "version": "stable", "weight": 50},
            {"url": url.replace("127.0.0.1", "localhost"), "version": "canary", "weight": 50},
        ]

    svc = start_gateway(
        tmp,
        {"ocr": pair(ocr_service.url), "summarizer": pair(summarizer_service.url)},
        {
            "DOCSUM_GATEWAY_API_KEYS_FILE": str(keys),
            "DOCSUM_GATEWAY_RATE_LIMIT_RPS": "1000",
            "DOCSUM_GATEWAY_RATE_LIMIT_BURST": "1000",
        },
    )
    yield svc, key
    svc.stop()


@pytest.fixture(scope="module")
def loaded_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
    gateway: tuple[LiveService, str],
    summarizer_service: LiveService,
    ocr_service: LiveService,
) -> Iterator[tuple[PrometheusServer, dict[str, Any]]]:
    """Prometheus scraping the stack, after ~30 s of Locust traffic through the gateway."""
    gw, key = gateway
    # A route used once before Prometheus starts and idle afterwards, as in any long-running
    # service: its rate is 0, its ratios 0/0 = NaN, which an aggregate must survive.
    for svc in (gw, summarizer_service, ocr_service):
        with urllib.request.urlopen(f"{svc.url}/openapi.json", timeout=10) as r:
            assert r.status == 200
    tmp = tmp_path_factory.mktemp("obs-prometheus")
    prom = start_prometheus(
        tmp,
        {
            "gateway": f"127.0.0.1:{gw.port}",
            "ocr": f"127.0.0.1:{ocr_service.port}",
            "summarizer": f"127.0.0.1:{summarizer_service.port}",
        },
    )
    try:
        summary = tmp / "locust-summary.json"
        key_file = tmp / "api-key"
        key_file.write_text(key + "\n")
        # One user of each class, closed loop with the users' think times: every route is
        # called, and the load stays within what two busy cores serve.
        one_each = json.dumps(
            [
                {"user_class_name": name, "fixed_count": 1}
                for name in ("SummarizeUser", "OcrUser", "DocumentUser")
            ]
        )
        cmd = [
            sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless",
            "--only-summary", "--users", "3", "--spawn-rate", "3", "--run-time", f"{LOCUST_S}s",
            "--host", gw.url, "--summary-json", str(summary), "--exit-code-on-error", "0",
            "--stop-timeout", "60", "--config-users", one_each,
        ]  # fmt: skip
        done = subprocess.run(
            cmd,
            cwd=ROOT,
            # The key as the cluster's load generator gets it: a file (a mounted Secret).
            env={**os.environ, "DOCSUM_API_KEY_FILE": str(key_file)},
            capture_output=True,
            text=True,
            timeout=patient(LOCUST_S + 120),
            check=False,
        )
        assert done.returncode == 0 and summary.is_file(), done.stdout + done.stderr
        # Two more evaluations of the rules after the last scrape of the traffic.
        time.sleep(3)
        yield prom, json.loads(summary.read_text())
    finally:
        prom.stop()


def test_locust_called_every_route_without_a_failure(
    loaded_prometheus: tuple[PrometheusServer, dict[str, Any]],
) -> None:
    _, summary = loaded_prometheus
    by_route = {e["name"]: e for e in summary["entries"]}
    assert set(by_route) == {
        "/api/v1/summarize",
        "/api/v1/ocr",
        "/api/v1/documents:summarize",
    }, summary
    for route, e in by_route.items():
        assert e["requests"] >= 1, route
    assert not summary["errors"], summary["errors"]


def _finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(s["value"][1])) for s in result)


def _label_values(prom: PrometheusServer, definition: str) -> list[str]:
    """Resolve a Grafana ``label_values(selector, label)`` variable query."""
    m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", definition.strip())
    assert m, f"unsupported variable query {definition!r}"
    selector, label = m.groups()
    return sorted(prom.api(f"label/{label}/values", **{"match[]": selector}))


def _regex_value(values: list[str]) -> str:
    """What Grafana substitutes for a multi-value/All variable in a Prometheus query."""
    escaped = [re.sub(r"([\\.^$*+?()\[\]{}|])", r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def _substitute(expr: str, variables: dict[str, str]) -> str:
    expr = expr.replace("$__rate_interval", RATE_INTERVAL)
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(f"${{{name}}}", variables[name]).replace(f"${name}", variables[name])
    assert "$" not in expr, f"unresolved variable in {expr}"
    return expr


def test_every_dashboard_panel_returns_data(
    loaded_prometheus: tuple[PrometheusServer, dict[str, Any]],
) -> None:
    prom, _ = loaded_prometheus
    empty: list[str] = []
    gpu_skipped: list[str] = []
    queried = 0
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        variables: dict[str, str] = {}
        for var in dashboard["templating"]["list"]:
            if var["type"] != "query":
                continue
            values = _label_values(prom, _substitute(var["definition"], variables))
            if not values and "allValue" in var:
                # $cluster, $namespace: no such label on the local stack; Grafana's All
                variables[var["name"]] = var["allValue"]
                continue
            assert values, f"{path.name}: variable ${var['name']} has no values"
            variables[var["name"]] = _regex_value(values)
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = _substitute(target["expr"], variables)
                result = prom.query(expr)  # raises on a query error
                queried += 1
                where = f"{path.name} / {panel['title']} / {target['refId']}: {expr}"
                if GPU_TAG in panel["description"]:
                    gpu_skipped.append(where)
                elif JOBS_TAG in panel["description"]:
                    pass  # no Redis nor workers in this stack: tests/jobs runs them
                elif not _finite(result):
                    empty.append(where)
    assert queried >= 60
    assert not empty, "panels without data:\n" + "\n".join(empty)
    # Exactly the marked GPU panels' queries (3: utilization, memory used and total).
    assert len(gpu_skipped) == 3, gpu_skipped


def test_every_recording_rule_returns_data(
    loaded_prometheus: tuple[PrometheusServer, dict[str, Any]],
) -> None:
    prom, _ = loaded_prometheus
    names = {
        r["record"]
        for g in yaml.safe_load(RULES.read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }
    empty = [n for n in sorted(names - set(GPU_RULES)) if not _finite(prom.query(n))]
    assert not empty, f"recording rules without data: {empty}"
    for name in GPU_RULES:
        prom.query(name)  # must still be a valid series name


def test_every_rule_evaluates_without_error(
    loaded_prometheus: tuple[PrometheusServer, dict[str, Any]],
) -> None:
    prom, _ = loaded_prometheus
    groups = prom.api("rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad, bad


def test_canary_and_stable_are_both_measured(
    loaded_prometheus: tuple[PrometheusServer, dict[str, Any]],
) -> None:
    prom, _ = loaded_prometheus
    result = prom.query(
        'sum by (upstream, version) (docsum_upstream_requests_total{job="gateway"})'
    )
    seen = {(s["metric"]["upstream"], s["metric"]["version"]) for s in result}
    assert {("summarizer", "stable"), ("summarizer", "canary")} <= seen, seen
