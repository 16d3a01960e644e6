"""The backends the gateway (and the async workers) call name headless Services: DNS gives them
one address per ready pod of the track, so they balance, retry and break per pod
(services/gateway/resolve.py). The ClusterIP Services stay for everyone else."""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT
from tests.e2e.kube import service_aliases

sys.path.insert(0, str(ROOT / "scripts"))
import k8s_render as kr

if not (kr.TOOLS_BIN / "helm").exists():
    pytest.skip("helm not installed: run `make tools`", allow_module_level=True)

#: The value sets whose backends differ: one version, canary tracks, gateway slots, Argo.
VALUE_SETS = {
    "default": [],
    "canary": ["canary"],
    "blue-green": ["blue-green", "jobs"],
    "canary-blue-green": ["canary", "blue-green"],
    "argo": ["rollouts", "monitoring"],
}


def render(features: list[str]) -> list[dict[str, Any]]:
    return kr.helm_template(kr.values_for(features))


def by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def backends(objs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    cm = by_kind(objs, "ConfigMap")["docsum-gateway-backends"]
    return dict(json.loads(cm["data"]["backends.json"]))


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def http_port(workload: dict[str, Any]) -> int:
    [c] = workload["spec"]["template"]["spec"]["containers"]
    return int(next(p["containerPort"] for p in c["ports"] if p["name"] == "http"))


@pytest.mark.parametrize("features", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_backend_url_names_the_headless_service_of_its_track(features: list[str]) -> None:
    objs = render(features)
    services = by_kind(objs, "Service")
    workloads = [o for o in objs if o["kind"] in kr.WORKLOAD_KINDS]
    seen = 0
    for upstream, versions in backends(objs).items():
        for b in versions:
            url = urlsplit(b["url"])
            assert url.hostname and url.hostname.endswith("-pods"), b
            svc = services[url.hostname]["spec"]
            assert svc["clusterIP"] == "None", (url.hostname, svc)
            assert svc["publishNotReadyAddresses"] is False, url.hostname
            assert [(p["name"], p["targetPort"]) for p in svc["ports"]] == [("http", "http")]
            # the same pods as the track's ClusterIP Service, which is still there
            clusterip = services[url.hostname.removesuffix("-pods")]["spec"]
            assert clusterip["type"] == "ClusterIP" and "clusterIP" not in clusterip
            assert svc["selector"] == clusterip["selector"]
            assert svc["selector"]["app.kubernetes.io/component"] == upstream
            assert svc["selector"]["docsum.io/track"] == b["version"]
            # DNS gives pod addresses: the URL carries the port the container listens on
            [workload] = [
                w
                for w in workloads
                if selects(svc["selector"], w["spec"]["template"]["metadata"]["labels"])
            ]
            assert url.port == http_port(workload), (b["url"], workload["metadata"]["name"])
            seen += 1
    assert seen == (4 if "canary" in features else 2)


@pytest.mark.parametrize("features", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_each_track_keeps_its_clusterip_service_and_has_one_headless_one(
    features: list[str],
) -> None:
    objs = render(features)
    services = by_kind(objs, "Service")
    tracks = ["stable", "canary"] if "canary" in features else ["stable"]
    expected = set()
    for name in ("ocr", "summarizer"):
        for track in tracks:
            base = f"docsum-{name}" + ("-canary" if track == "canary" else "")
            expected |= {base, f"{base}-pods"}
            assert services[base]["spec"]["type"] == "ClusterIP"
    headless = {
        n
        for n, s in services.items()
        if s["spec"].get("clusterIP") == "None"
        and s["spec"]["selector"]["app.kubernetes.io/component"] in ("ocr", "summarizer")
    }
    assert headless == {n for n in expected if n.endswith("-pods")}
    assert expected <= set(services)


def test_service_monitors_scrape_each_pod_once() -> None:
    """A ServiceMonitor picks Services by label: the headless ones (same pods) stay out."""
    objs = render(["canary", "monitoring"])
    services = by_kind(objs, "Service")
    for name, monitor in by_kind(objs, "ServiceMonitor").items():
        sel = monitor["spec"]["selector"]
        picked = {
            n
            for n, s in services.items()
            if selects(sel["matchLabels"], s["metadata"]["labels"])
            and all(
                e["operator"] == "DoesNotExist" and e["key"] not in s["metadata"]["labels"]
                for e in sel.get("matchExpressions", [])
            )
        }
        assert picked, name
        assert not {n for n in picked if n.endswith("-pods")}, (name, picked)
        # no two picked Services share a pod
        selectors = [services[n]["spec"]["selector"] for n in picked]
        for i, a in enumerate(selectors):
            for b in selectors[i + 1 :]:
                assert not (selects(a, b) or selects(b, a)), (name, picked)


def test_the_local_overlay_names_each_pod_after_every_service_that_selects_it() -> None:
    """`make e2e` (tests/e2e/kube.py) gives a pod the names of all its Services as network
    aliases, so a headless name resolves to every pod behind it, as cluster DNS does."""
    docs = kr.kustomize(ROOT / "k8s" / "overlays" / "local")
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    aliases = service_aliases(deployments, [d for d in docs if d["kind"] == "Service"])
    assert aliases["docsum-ocr-pod-0"] == ["docsum-ocr", "docsum-ocr-pods"]
    assert aliases["docsum-summarizer-pod-0"] == ["docsum-summarizer", "docsum-summarizer-pods"]
    names = {n for pod in aliases.values() for n in pod}
    for versions in backends(docs).values():
        for b in versions:
            assert urlsplit(b["url"]).hostname in names, b
