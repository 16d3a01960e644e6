"""Two releases in one namespace: every name derives from the release, and every reference
(backends, selectors, Services a Rollout or route names, analysis queries) stays inside it."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import k8s_render as kr

if not (kr.TOOLS_BIN / "helm").exists():
    pytest.skip("helm not installed: run `make tools`", allow_module_level=True)

KEYS = {"gateway": {"apiKeys": {"hashed": ["ci:" + "0" * 64]}}}
#: Every feature, in the two combinations the chart allows (Argo, or docsum rollout's).
FEATURE_SETS = {
    "argo": [*kr.PROD],
    "no-argo": [*kr.PROD[:-1], "canary", "blue-green"],
}


def render(release: str, features: list[str], **extra: Any) -> list[dict[str, Any]]:
    values = kr.merge(kr.values_for(features, {}), KEYS, extra)
    return kr.helm_template(values, release=release, namespace="shared")


def names(objs: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objs}


def references(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(kind, name) of every object ``obj`` refers to by name."""
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind in (*kr.WORKLOAD_KINDS, "Pod"):
        pod = spec if kind == "Pod" else spec["template"]["spec"]
        if kind != "Pod":
            yield "ServiceAccount", pod["serviceAccountName"]
        for c in pod["containers"]:
            for src in c.get("envFrom", []):
                yield "ConfigMap", src["configMapRef"]["name"]
        for vol in pod.get("volumes", []):
            if "configMap" in vol:
                yield "ConfigMap", vol["configMap"]["name"]
            if "secret" in vol:
                yield "Secret", vol["secret"]["secretName"]
        strategy = spec.get("strategy", {})
        if "blueGreen" in strategy:
            yield "Service", strategy["blueGreen"]["activeService"]
            yield "Service", strategy["blueGreen"]["previewService"]
        analysis = strategy.get("blueGreen", {}).get("prePromotionAnalysis") or strategy.get(
            "canary", {}
        ).get("analysis")
        for t in (analysis or {}).get("templates", []):
            yield "AnalysisTemplate", t["templateName"]
    if kind == "HorizontalPodAutoscaler":
        target = spec["scaleTargetRef"]
        yield target["kind"], target["name"]
    if kind == "HTTPRoute":
        for rule in spec["rules"]:
            for ref in rule["backendRefs"]:
                yield "Service", ref["name"]
        for ref in spec["parentRefs"]:
            yield "Gateway", ref["name"]
    if kind == "Pod":  # helm test: the Services it calls
        for var in pod["containers"][0]["env"]:
            for url in var["value"].split():
                if url.startswith("http://"):
                    yield "Service", re.match(r"http://([^:/]+)", url).group(1)  # type: ignore[union-attr]
    if kind == "ConfigMap" and "backends.json" in obj.get("data", {}):
        for versions in json.loads(obj["data"]["backends.json"]).values():
            for b in versions:
                yield "Service", re.match(r"http://([^:/]+)", b["url"]).group(1)  # type: ignore[union-attr]


def selectors(obj: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Every label selector of ``obj`` that picks pods or Services."""
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind == "Service":
        yield spec["selector"]
    elif kind in (*kr.WORKLOAD_KINDS, "PodDisruptionBudget", "ServiceMonitor"):
        yield spec["selector"]["matchLabels"]
    elif kind == "NetworkPolicy":
        yield spec["podSelector"]["matchLabels"]
        for rule in spec.get("ingress", []) + spec.get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if "namespaceSelector" not in peer and "podSelector" in peer:
                    yield peer["podSelector"]["matchLabels"]


@pytest.mark.parametrize("features", FEATURE_SETS.values(), ids=FEATURE_SETS.keys())
def test_two_releases_in_one_namespace_share_no_name_and_refer_only_to_their_own(
    features: list[str],
) -> None:
    a, b = render("a", features), render("b", features)
    assert names(a) and not names(a) & names(b), sorted(names(a) & names(b))
    for release, objs in (("a", a), ("b", b)):
        own = names(objs)
        for obj in objs:
            for ref in references(obj):
                assert ref in own, f"{release}: {obj['kind']}/{obj['metadata']['name']} → {ref}"
            for sel in selectors(obj):
                assert sel.get("app.kubernetes.io/instance") == release, (obj, sel)
            if obj["kind"] == "AnalysisTemplate":
                for metric in obj["spec"]["metrics"]:
                    query = metric["provider"]["prometheus"]["query"]
                    # every series selector names this release, and only this one
                    jobs = query.count('job="{{args.service}}"')
                    assert jobs and query.count(f'app_kubernetes_io_instance="{release}"') == jobs
                    assert query.count("app_kubernetes_io_instance=") == jobs, query
            if obj["kind"] == "ServiceMonitor":
                assert "app.kubernetes.io/instance" in obj["spec"]["podTargetLabels"]


def test_the_release_docsum_keeps_the_names_the_overlays_and_users_rely_on() -> None:
    objs = render("docsum", [])
    assert {
        ("Deployment", "docsum-gateway"),
        ("Deployment", "docsum-ocr"),
        ("Deployment", "docsum-summarizer"),
        ("Service", "docsum-gateway"),
        ("ConfigMap", "docsum-gateway-backends"),
    } <= names(objs)
    [dep] = [o for o in objs if names([o]) == {("Deployment", "docsum-gateway")}]
    [secret] = [v for v in dep["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    assert secret["secret"]["secretName"] == "docsum-api-keys"


@pytest.mark.parametrize(
    ("release", "extra", "prefix"),
    [
        ("docsum-staging", {}, "docsum-staging-"),
        ("a", {}, "a-docsum-"),
        ("a", {"nameOverride": "sum"}, "a-sum-"),
        ("a", {"fullnameOverride": "edge"}, "edge-"),
    ],
)
def test_names_follow_the_release_name_and_overrides(
    release: str, extra: dict[str, Any], prefix: str
) -> None:
    objs = render(release, ["canary"], **extra)
    assert all(o["metadata"]["name"].startswith(prefix) for o in objs if o["kind"] != "Namespace")
    assert ("Service", f"{prefix}summarizer-canary") in names(objs)
    if "nameOverride" in extra:
        labels = {o["metadata"]["labels"]["app.kubernetes.io/name"] for o in objs}
        assert labels == {extra["nameOverride"]}


@pytest.mark.parametrize("features", FEATURE_SETS.values(), ids=FEATURE_SETS.keys())
def test_names_stay_dns_labels_for_a_long_release_name(features: list[str]) -> None:
    """A Service's name is a DNS label (63 characters): the longest derived ones, the canary's
    headless Service and the gateway's slots, fit whatever the release is called."""
    objs = render("x" * 53, features)  # the longest name Helm accepts
    services = {n for kind, n in names(objs) if kind == "Service"}
    assert not [n for n in services if len(n) > 63], sorted(services)
    prefix = "x" * 40 + "-"  # <release>-docsum, cut to 40 characters
    if "canary" in features:
        assert f"{prefix}summarizer-canary-pods" in services
        assert len(f"{prefix}summarizer-canary-pods") == 63
    assert f"{prefix}gateway-preview" in services
