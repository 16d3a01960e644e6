"""Monitoring a default kube-prometheus-stack picks up, and a clear failure where a feature's
custom resources are not served."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import k8s_render as kr

if not (kr.TOOLS_BIN / "helm").exists():
    pytest.skip("helm not installed: run `make tools`", allow_module_level=True)

#: What a cluster's discovery tells Helm (group/version/Kind); offline renders have no kinds.
CLUSTER = ["apps/v1/Deployment", "v1/Service"]
FEATURES = {
    "monitoring.enabled": [
        "monitoring.coreos.com/v1/ServiceMonitor",
        "monitoring.coreos.com/v1/PrometheusRule",
    ],
    "rollouts.enabled": ["argoproj.io/v1alpha1/Rollout", "argoproj.io/v1alpha1/AnalysisTemplate"],
    "ingress.enabled": [
        "gateway.networking.k8s.io/v1/HTTPRoute",
        "gateway.networking.k8s.io/v1/Gateway",
    ],
}


def template(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kr.tool("helm"), "template", "docsum", str(kr.CHART), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_servicemonitors_and_rules_carry_the_label_kube_prometheus_stack_selects() -> None:
    objs = kr.helm_template(kr.values_for(["monitoring"], {}))
    selected = [o for o in objs if o["kind"] in ("ServiceMonitor", "PrometheusRule")]
    assert len(selected) == 4
    for obj in selected:
        assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack", obj["kind"]
    objs = kr.helm_template(
        kr.values_for(["monitoring"], {"monitoring": {"labels": {"release": "prom"}}})
    )
    assert {o["metadata"]["labels"]["release"] for o in objs if "Monitor" in o["kind"]} == {"prom"}


@pytest.mark.parametrize("value", FEATURES)
def test_a_cluster_without_the_crds_fails_with_what_to_install(value: str) -> None:
    kinds = FEATURES[value]
    on = ["--set", f"{value}=true"]
    missing = template(*on, *(f"--api-versions={k}" for k in CLUSTER))
    assert missing.returncode != 0
    assert f"{value} needs {kinds[0]}, which this cluster does not serve" in missing.stderr
    served = template(*on, *(f"--api-versions={k}" for k in CLUSTER + kinds))
    assert served.returncode == 0, served.stderr
    offline = template(*on)
    assert offline.returncode == 0, offline.stderr


def test_scraped_series_carry_the_label_that_tells_docsum_s_jobs_from_other_apps() -> None:
    """job="gateway" may be anyone's: the ServiceMonitors copy part-of from pods that carry
    it (app_kubernetes_io_part_of="docsum", what the rules and dashboards match `up` on)."""
    objs = kr.helm_template(kr.values_for(["monitoring"], {}))
    pods = {
        o["metadata"]["labels"]["app.kubernetes.io/component"]: o["spec"]["template"]
        for o in objs
        if o["kind"] in kr.WORKLOAD_KINDS
    }
    monitors = [o for o in objs if o["kind"] == "ServiceMonitor"]
    assert monitors
    for sm in monitors:
        assert "app.kubernetes.io/part-of" in sm["spec"]["podTargetLabels"]
        component = sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        assert pods[component]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "docsum"
