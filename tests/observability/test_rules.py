"""The rules, the runbook, the SLO file and the dashboards agree with each other.

Fast checks without a running stack (promtool runs the rules' unit tests); the live check,
every query against a real Prometheus scraping real services, is test_live.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.observability.prometheus import CONFIG, DASHBOARDS, RULES, promtool

RULE_TESTS = sorted((ROOT / "monitoring" / "rule-tests").glob("*.yml"))
RUNBOOK = ROOT / "docs" / "runbook.md"
DASHBOARD_FILES = sorted(DASHBOARDS.glob("*.json"))
SLO = ROOT / "loadtests" / "slo.toml"
GPU_TAG = "[requires: gpu]"
JOBS_TAG = "[requires: jobs]"
#: The only panels allowed to have no data without a GPU (they read NVML metrics).
GPU_PANELS = {("docsum-ocr", "GPU utilization"), ("docsum-ocr", "GPU memory")}
RUNBOOK_BASE = "https://github.com/docsum/docsum/blob/main/docs/runbook.md#"


def rule_groups() -> list[dict[str, Any]]:
    return list(yaml.safe_load(RULES.read_text())["groups"])


def alerts() -> list[dict[str, Any]]:
    return [r for g in rule_groups() for r in g["rules"] if "alert" in r]


def records() -> list[dict[str, Any]]:
    return [r for g in rule_groups() for r in g["rules"] if "record" in r]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_promtool_checks_the_rules_and_the_config() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = promtool("check", "config", str(CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool tests in monitoring/rule-tests"
    result = promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_complete_and_links_to_its_runbook_section() -> None:
    anchors = {
        github_anchor(line.lstrip("#"))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names)), "an alert name is used twice"
    assert len(names) >= 6
    for a in alerts():
        name = a["alert"]
        assert re.fullmatch(r"Docsum[A-Z][A-Za-z0-9]+", name), name
        assert a.get("for"), f"{name}: no 'for'"
        assert a.get("labels", {}).get("severity") in {"critical", "warning", "info"}, name
        notes = a.get("annotations", {})
        assert notes.get("summary") and notes.get("description"), name
        url = notes.get("runbook_url", "")
        assert url.startswith(RUNBOOK_BASE), f"{name}: runbook_url {url!r}"
        anchor = url.removeprefix(RUNBOOK_BASE)
        assert anchor == name.lower(), f"{name}: links to #{anchor}"
        assert anchor in anchors, f"{name}: docs/runbook.md has no '## {name}' section"


def test_the_issue_s_alerts_are_there() -> None:
    names = {a["alert"] for a in alerts()}
    for wanted in (
        "DocsumHighErrorRatio",
        "DocsumLatencyP99OverSLO",
        "DocsumQueueSaturated",
        "DocsumGPUMemoryNearFull",
        "DocsumReplicasNotReady",
        "DocsumCanaryWorseThanStable",
    ):
        assert wanted in names


def test_every_alert_has_a_promtool_case_that_fires_it() -> None:
    fired: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for t in case.get("alert_rule_test", []):
                if t.get("exp_alerts"):
                    fired.add(t["alertname"])
    missing = sorted({a["alert"] for a in alerts()} - fired)
    assert not missing, f"no promtool test makes these fire: {missing}"


def test_recording_rules_are_named_level_metric_operations() -> None:
    for r in records():
        level, metric, ops = r["record"].split(":")
        assert re.fullmatch(r"[a-z_]+", level) and re.fullmatch(r"[a-z0-9_]+", ops), r["record"]
        assert metric.startswith("docsum_"), r["record"]
        assert not metric.endswith("_total"), f"{r['record']}: drop _total after rate()"


def test_slo_file_and_rules_name_the_same_p99_per_route() -> None:
    slo = tomllib.loads(SLO.read_text())["routes"]
    from_slo = {route: spec["p99_ms"] / 1000 for route, spec in slo.items()}
    from_rules = {
        r["labels"]["route"]: float(r["expr"].removeprefix("vector(").removesuffix(")"))
        for r in records()
        if r["record"] == "route:docsum_slo_p99_latency_seconds:constant"
    }
    assert from_rules == from_slo


def test_local_scrape_config_names_the_jobs_the_rules_expect() -> None:
    jobs = {j["job_name"] for j in yaml.safe_load(CONFIG.read_text())["scrape_configs"]}
    # The job names the ServiceMonitors give on Kubernetes (app.kubernetes.io/component).
    assert {"gateway", "ocr", "summarizer"} <= jobs
    config = yaml.safe_load(CONFIG.read_text())
    # the one rules file
    assert [(CONFIG.parent / f).resolve() for f in config["rule_files"]] == [RULES.resolve()]


def test_dashboards_are_what_the_spec_builds() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "monitoring" / "build_dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_dashboards_are_complete_and_gpu_panels_are_few_and_marked() -> None:
    names = {p.stem for p in DASHBOARD_FILES}
    assert names == {"docsum-overview", "docsum-ocr", "docsum-summarizer", "docsum-gateway"}
    gpu_panels = set()
    jobs_panels: set[str] = set()
    for path in DASHBOARD_FILES:
        d = json.loads(path.read_text())
        assert d["uid"] == path.stem
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids))
        for p in panels(d):
            assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]
            assert p["datasource"]["uid"] == "${datasource}"
            assert p.get("description"), f"{d['uid']}: {p['title']} has no description"
            if GPU_TAG in p["description"]:
                gpu_panels.add((d["uid"], p["title"]))
                for t in p["targets"]:
                    names_used = set(re.findall(r"\b(docsum_[a-z0-9_]+)", t["expr"]))
                    assert names_used and all(n.startswith("docsum_gpu_") for n in names_used)
            if JOBS_TAG in p["description"]:
                jobs_panels.add(p["title"])
                for t in p["targets"]:
                    names_used = set(re.findall(r"\b(docsum_[a-z0-9_]+)", t["expr"]))
                    assert all(n.startswith("docsum_jobs_") for n in names_used), t["expr"]
                    assert names_used or 'job="worker"' in t["expr"], t["expr"]
    assert gpu_panels == GPU_PANELS
    # Issue 17's row: submitted/completed/failed, backlog, oldest age, duration quantiles.
    assert len(jobs_panels) == 5, jobs_panels


def test_gateway_dashboard_compares_canary_and_stable() -> None:
    d = json.loads((DASHBOARDS / "docsum-gateway.json").read_text())
    variables = {v["name"] for v in d["templating"]["list"]}
    assert {"upstream", "version"} <= variables
    by_version = [p for p in panels(d) if any("version" in t["expr"] for t in p["targets"])]
    assert len(by_version) >= 3


def known_metrics() -> set[str]:
    """Every series name the services can export, read from their metric definitions."""
    from prometheus_client import REGISTRY, generate_latest

    import docsum.common.metrics
    import docsum.gateway.metrics
    import docsum.jobs.metrics
    import docsum.ocr.metrics  # noqa: F401

    names: set[str] = set()
    for line in generate_latest(REGISTRY).decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "counter":
                names.add(name if name.endswith("_total") else f"{name}_total")
            elif kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            else:
                names.add(name)
    # Collected at scrape time only where NVML sees a GPU.
    gpu_source = (ROOT / "services" / "ocr" / "gpu.py").read_text()
    names |= set(re.findall(r'"(docsum_gpu_[a-z_]+)"', gpu_source))
    return names


def test_every_series_in_rules_and_dashboards_is_exported_or_recorded() -> None:
    exported = known_metrics()
    recorded = {r["record"] for r in records()}
    exprs = [r.get("expr", "") for g in rule_groups() for r in g["rules"]]
    for path in DASHBOARD_FILES:
        for p in panels(json.loads(path.read_text())):
            exprs += [t["expr"] for t in p["targets"]]
    unknown = set()
    for expr in exprs:
        for name in re.findall(r"\b([a-z_]+:[a-z0-9_]+:[a-z0-9_]+)\b", expr):
            if name not in recorded:
                unknown.add(name)
        for name in re.findall(r"(?<!:)\b(docsum_[a-z0-9_]+)\b(?!:)", expr):
            if name not in exported:
                unknown.add(name)
    assert not unknown, f"not exported by any service nor recorded: {sorted(unknown)}"


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: Path(p).name)
def test_promtool_test_files_load_the_shipped_rules(path: Path) -> None:
    files = yaml.safe_load(path.read_text())["rule_files"]
    assert [(path.parent / f).resolve() for f in files] == [RULES.resolve()]


#: Series names as queries use them: recorded (level:metric:ops), docsum's own, the scrape's.
_SERIES = r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+|docsum_[a-z0-9_]+|process_[a-z0-9_]+|up|ALERTS"
SCOPE = ('cluster=~"$cluster"', 'namespace=~"$namespace"')


def selectors(expr: str) -> list[tuple[str, str]]:
    """(series name, its matchers) of every series selector in a PromQL ``expr``."""
    # Blank what holds no series (strings, label lists: by (...), on (...)), keeping positions.
    masked = re.sub(r'"[^"]*"', lambda m: '"' + "x" * (len(m.group()) - 2) + '"', expr)
    masked = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
        lambda m: " " * len(m.group()),
        masked,
    )
    out = []
    for m in re.finditer(rf"(?<![\w:])({_SERIES})(?![\w:(])(\{{[^}}]*\}})?", masked):
        out.append((m.group(1), expr[m.start(2) : m.end(2)] if m.group(2) else ""))
    return out


def test_selectors_finds_every_series_of_a_query() -> None:
    expr = (
        'sum by (upstream) (rate(docsum_x_total{a="up"}[5m])) / ignoring (version) '
        "group_left () a:docsum_y:rate5m and on (route) up"
    )
    assert selectors(expr) == [
        ("docsum_x_total", '{a="up"}'),
        ("a:docsum_y:rate5m", ""),
        ("up", ""),
    ]


def test_every_dashboard_query_filters_on_cluster_and_namespace() -> None:
    """Two installs (clusters, namespaces) never mix in a panel: each dashboard has $cluster and
    $namespace, and every series selector of every query (constants aside) filters on both."""
    for path in DASHBOARD_FILES:
        d = json.loads(path.read_text())
        names = [v["name"] for v in d["templating"]["list"]]
        assert names[1:3] == ["cluster", "namespace"], f"{path.name}: {names}"
        exprs = [t["expr"] for p in panels(d) for t in p["targets"]]
        exprs += [v["definition"] for v in d["templating"]["list"][3:] if v.get("definition")]
        for expr in exprs:
            found = selectors(expr)
            assert found, expr
            for name, matchers in found:
                if name.endswith(":constant"):
                    continue
                assert all(m in matchers for m in SCOPE), f"{path.name}: {name}{matchers}"


def _aggregations(expr: str) -> list[str]:
    return re.findall(r"\b(?:sum|max|min|avg|count) by \(([^)]*)\)", expr)


def test_recording_rules_and_alerts_keep_cluster_and_namespace() -> None:
    """Two installs' series stay apart: every aggregation keeps cluster and namespace, and every
    vector match of two docsum series matches on them."""
    for group in rule_groups():
        for r in group["rules"]:
            expr = r["expr"]
            for labels in _aggregations(expr):
                kept = {x.strip() for x in labels.split(",")}
                assert {"cluster", "namespace"} <= kept, f"{r.get('record', r.get('alert'))}"
            for labels in re.findall(r"\band on \(([^)]*)\)", expr):
                kept = {x.strip() for x in labels.split(",")}
                assert {"cluster", "namespace"} <= kept, r.get("alert")


def test_series_that_are_not_docsum_s_own_are_matched_as_docsum_s() -> None:
    """`up` and process_* of a job named gateway may be another app's: rules and dashboards
    match them on app_kubernetes_io_part_of="docsum" too (the local scrape config sets it)."""
    exprs = [r["expr"] for g in rule_groups() for r in g["rules"]]
    for path in DASHBOARD_FILES:
        d = json.loads(path.read_text())
        exprs += [t["expr"] for p in panels(d) for t in p["targets"]]
        exprs += [v["definition"] for v in d["templating"]["list"] if v.get("definition")]
    checked = 0
    for expr in exprs:
        for name, matchers in selectors(expr):
            if name == "up" or name.startswith("process_"):
                checked += 1
                assert 'app_kubernetes_io_part_of="docsum"' in matchers, expr
    assert checked >= 8
    config = yaml.safe_load(CONFIG.read_text())
    for job in config["scrape_configs"]:
        if job["job_name"] != "prometheus":
            labels = job["static_configs"][0].get("labels", {})
            assert labels.get("app_kubernetes_io_part_of") == "docsum", job["job_name"]
