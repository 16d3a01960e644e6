"""One canary gate: the chart's ``canaryGate`` is what the Argo analyses, the
DocsumCanaryWorseThanStable alert and ``docsum rollout``'s gates judge by.

The numbers are compared where each consumer reads them (values.yaml, RolloutSettings, the rules
file, the rendered objects), and the Argo queries and ``docsum rollout``'s gate are run on the
same series in a real Prometheus: they must reach the same verdict. The alert's verdicts at the
gate's margins are promtool cases (monitoring/rule-tests/gateway.test.yml).
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

import httpx
import pytest
import yaml

from docsum.rollout.gates import Prometheus, gate, slot_cohort
from docsum.rollout.settings import RolloutSettings
from tests.conftest import ROOT

from .conftest import Traffic, openmetrics

sys.path.insert(0, str(ROOT / "scripts"))
import k8s_render as kr

RULES = kr.CHART / "files" / "rules" / "docsum.rules.yml"
CONSTANTS = {
    "gate:docsum_canary_max_error_ratio_increase:constant": "maxErrorRatioIncrease",
    "gate:docsum_canary_max_p99_ratio:constant": "maxP99Ratio",
    "gate:docsum_canary_min_calls:constant": "minCalls",
}
needs_helm = pytest.mark.skipif(
    not (kr.TOOLS_BIN / "helm").exists(), reason="helm not installed: run `make tools`"
)


def chart_gate() -> dict[str, Any]:
    return dict(yaml.safe_load((kr.CHART / "values.yaml").read_text())["canaryGate"])


def rule_constants(groups: list[dict[str, Any]]) -> dict[str, float]:
    """canaryGate key → the number the rules' constant records."""
    return {
        CONSTANTS[r["record"]]: float(re.fullmatch(r"vector\((.+)\)", r["expr"]).group(1))  # type: ignore[union-attr]
        for g in groups
        for r in g["rules"]
        if r.get("record") in CONSTANTS
    }


def test_docsum_rollout_defaults_and_the_rules_file_are_the_chart_s_gate() -> None:
    g = chart_gate()
    s = RolloutSettings()
    assert (s.window, s.min_requests, s.max_error_rate_increase, s.max_p99_ratio) == (
        g["window"],
        float(g["minCalls"]),
        float(g["maxErrorRatioIncrease"]),
        float(g["maxP99Ratio"]),
    )
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert rule_constants(groups) == {k: float(g[k]) for k in CONSTANTS.values()}
    [alert] = [
        r for gr in groups for r in gr["rules"] if r.get("alert") == "DocsumCanaryWorseThanStable"
    ]
    for name in CONSTANTS:
        assert name in alert["expr"]
    # The alert's rates are the rules' 5-minute ones: the gate's window.
    assert g["window"] == "5m" and ":rate5m" in alert["expr"] and "* 300" in alert["expr"]


def _render(**gate_values: Any) -> list[dict[str, Any]]:
    values = kr.values_for(["rollouts"], {})
    return kr.helm_template(kr.merge(values, {"canaryGate": gate_values}))


@needs_helm
@pytest.mark.parametrize(
    "gate_values",
    [{}, {"window": "2m", "minCalls": 20, "maxErrorRatioIncrease": "0.05", "maxP99Ratio": "1.5"}],
    ids=["defaults", "overridden"],
)
def test_the_analyses_judge_by_the_gate(gate_values: dict[str, Any]) -> None:
    g = {**chart_gate(), **gate_values}
    templates = {
        o["metadata"]["name"]: o["spec"]["metrics"]
        for o in _render(**gate_values)
        if o["kind"] == "AnalysisTemplate"
    }
    margins = {
        "docsum-error-rate": g["maxErrorRatioIncrease"],
        "docsum-p99-latency": g["maxP99Ratio"],
    }
    assert set(templates) == set(margins)
    for name, [metric] in templates.items():
        m = margins[name]
        assert metric["successCondition"] == f"!isNaN(result[0]) && result[0] <= {m}"
        assert metric["failureCondition"] == f"!isNaN(result[0]) && result[0] > {m}"
        assert metric["initialDelay"] == g["window"]
        query = metric["provider"]["prometheus"]["query"]
        assert set(re.findall(r"\[([0-9a-z]+)\]", query)) == {g["window"]}
        assert f">= {g['minCalls']}\n" in query


@needs_helm
def test_the_alert_judges_by_the_gate_and_refuses_another_window() -> None:
    objs = kr.helm_template(
        kr.values_for(["monitoring"], {"canaryGate": {"minCalls": 20, "maxP99Ratio": "1.5"}})
    )
    [rule] = [o for o in objs if o["kind"] == "PrometheusRule"]
    got = rule_constants(rule["spec"]["groups"])
    assert got == {"minCalls": 20, "maxP99Ratio": 1.5, "maxErrorRatioIncrease": 0.01}
    with pytest.raises(RuntimeError, match=r"canaryGate\.window is 2m"):
        kr.helm_template(kr.values_for(["monitoring"], {"canaryGate": {"window": "2m"}}))


# --- the same series, judged by the Argo queries and by `docsum rollout` -------------------------
#: (name, new pods' traffic, stable pods' traffic, verdict of each analysis)
SCENARIOS = [
    ("healthy", {"error_ratio": 0.002}, {"error_ratio": 0.001}, ("pass", "pass")),
    ("2 points more errors", {"error_ratio": 0.02}, {}, ("fail", "pass")),
    ("twice as slow", {"latency_s": 0.4}, {}, ("pass", "fail")),
    ("30 calls in the window", {"rps": 0.1, "error_ratio": 0.5}, {}, ("none", "none")),
]


def _pods(scenario: int, hash_: str, slot: str, **kw: float) -> Traffic:
    labels = {
        "job": "gateway",
        "namespace": "docsum",
        "app_kubernetes_io_instance": kr.RELEASE,
        "rollouts_pod_template_hash": f"{hash_}{scenario}",
        "docsum_io_slot": f"{slot}{scenario}",
        "route": "/api/v1/ocr",
        "method": "POST",
    }
    return Traffic(labels=labels, **kw)  # type: ignore[arg-type]


def _argo_verdict(url: str, metric: dict[str, Any], scenario: int) -> str:
    query = metric["provider"]["prometheus"]["query"]
    for arg, value in {
        "service": "gateway",
        "namespace": "docsum",
        "new-hash": f"new{scenario}",
        "stable-hash": f"old{scenario}",
    }.items():
        query = query.replace(f"{{{{args.{arg}}}}}", value)
    result = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=10).json()
    assert result["status"] == "success", result
    value = float(result["data"]["result"][0]["value"][1])
    if math.isnan(value):
        return "none"  # neither condition holds: inconclusive, the rollout pauses
    limit = float(re.search(r"<= ([0-9.]+)", metric["successCondition"]).group(1))  # type: ignore[union-attr]
    return "pass" if value <= limit else "fail"


@needs_helm
@pytest.mark.integration
def test_argo_and_docsum_rollout_reach_the_same_verdict_on_the_same_series(prometheus) -> None:
    cohorts = []
    for i, (_, new, stable, _) in enumerate(SCENARIOS):
        cohorts += [_pods(i, "new", "green", **new), _pods(i, "old", "blue", **stable)]
    url = prometheus(
        openmetrics(cohorts, "docsum_http_requests", "docsum_http_request_duration_seconds")
    )
    templates = {
        o["metadata"]["name"].removeprefix(f"{kr.RELEASE}-"): o["spec"]["metrics"][0]
        for o in _render()
        if o["kind"] == "AnalysisTemplate"
    }
    settings = RolloutSettings()
    prom = Prometheus(url, 10)
    for i, (name, _, _, expected) in enumerate(SCENARIOS):
        argo = tuple(_argo_verdict(url, templates[t], i) for t in ("error-rate", "p99-latency"))
        assert argo == expected, name
        verdict = gate(prom, slot_cohort(f"green{i}"), slot_cohort(f"blue{i}"), settings)
        if expected == ("none", "none"):
            assert not verdict.passed and "needed to judge" in verdict.reasons[0], name
            continue
        failed = {
            "error-rate": any("error ratio" in r for r in verdict.reasons),
            "p99-latency": any("p99" in r for r in verdict.reasons),
        }
        assert failed == {"error-rate": expected[0] == "fail", "p99-latency": expected[1] == "fail"}
        assert verdict.passed == (expected == ("pass", "pass")), verdict.describe()
