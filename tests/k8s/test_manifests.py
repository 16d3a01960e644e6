"""The chart's renders agree with the services they deploy, and the checks catch what they
claim to catch. Needs `make tools` (helm, kubectl, kubernetes-validate, the CRD validators)."""

from __future__ import annotations

import copy
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import k8s_check as kc
import k8s_render as kr

if not (kr.TOOLS_BIN / "helm").exists():
    pytest.skip("helm not installed: run `make tools`", allow_module_level=True)

SETTINGS = {
    "ocr": "docsum.ocr.settings:OCRSettings",
    "summarizer": "docsum.summarizer.settings:SummarizerSettings",
    "gateway": "docsum.gateway.settings:GatewaySettings",
    "worker": "docsum.jobs.settings:WorkerSettings",
}


@pytest.fixture(scope="module")
def prod() -> list[dict[str, Any]]:
    return kr.helm_template(kr.values_for(kr.PROD))


@pytest.fixture(scope="module")
def canary() -> list[dict[str, Any]]:
    return kr.helm_template(kr.values_for(["canary", "blue-green"]))


def workloads(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] in kr.WORKLOAD_KINDS]


def env_of(workload: dict[str, Any]) -> dict[str, str]:
    [container] = workload["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_every_docsum_variable_the_chart_sets_is_a_setting_of_that_service(
    prod: list[dict[str, Any]], canary: list[dict[str, Any]]
) -> None:
    """A typo in a variable name would be ignored by the service (extra="ignore")."""
    probes = kr.helm_template(kr.merge(kr.values_for(kr.PROD), {"probes": {"separatePort": True}}))
    for obj in workloads(prod) + workloads(canary) + workloads(probes):
        name = obj["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        module, _, cls = SETTINGS[name].partition(":")
        fields = getattr(importlib.import_module(module), cls).model_fields
        configmap = next(
            o
            for o in prod
            if o["kind"] == "ConfigMap" and o["metadata"]["name"] == f"docsum-{name}"
        )
        for var in [*env_of(obj), *configmap["data"]]:
            if var.startswith("DOCSUM_"):
                field = var.removeprefix(f"DOCSUM_{name.upper()}_").split("__")[0].lower()
                assert field in fields, f"{obj['metadata']['name']}: {var} is no setting of {cls}"


def test_torch_threads_equal_the_cpu_limit_and_grace_outlasts_the_drain(
    prod: list[dict[str, Any]],
) -> None:
    for obj in workloads(prod):
        spec = obj["spec"]["template"]["spec"]
        [c] = spec["containers"]
        env = env_of(obj)
        name = c["name"]
        if name in ("ocr", "summarizer"):
            assert env[f"DOCSUM_{name.upper()}_TORCH_THREADS"] == str(
                int(float(c["resources"]["limits"]["cpu"]))
            )
        pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
        assert spec["terminationGracePeriodSeconds"] > 25 + pre_stop
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    ocr = next(o for o in workloads(prod) if o["metadata"]["name"] == "docsum-ocr")
    [c] = ocr["spec"]["template"]["spec"]["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert env_of(ocr)["DOCSUM_OCR_DEVICE"] == "cuda"


def test_the_gateway_accepts_the_backends_the_chart_writes(canary: list[dict[str, Any]]) -> None:
    from docsum.gateway.backends import parse_backends

    [cm] = [o for o in canary if o["metadata"]["name"] == "docsum-gateway-backends"]
    backends = parse_backends(json.loads(cm["data"]["backends.json"]))
    weights = {(b.url, b.version): b.weight for b in backends["ocr"]}
    assert weights == {
        ("http://docsum-ocr-pods:8081", "stable"): 90,
        ("http://docsum-ocr-canary-pods:8081", "canary"): 10,
    }
    services = {o["metadata"]["name"] for o in canary if o["kind"] == "Service"}
    assert {"docsum-ocr-canary", "docsum-summarizer-canary", "docsum-gateway-preview"} <= services
    assert {"docsum-ocr-canary-pods", "docsum-summarizer-canary-pods"} <= services


def test_a_component_is_the_json_patch_from_base_to_the_feature() -> None:
    base = {kr.ident(o): o for o in kr.helm_template(kr.values_for([]))}
    for feature in ("gpu", "autoscaling", "rollouts"):
        after = {kr.ident(o): o for o in kr.helm_template(kr.values_for([feature]))}
        for key in base.keys() & after.keys():
            ops = kr.json_patch(base[key], after[key])
            assert jsonpatch.apply_patch(copy.deepcopy(base[key]), ops) == after[key], key


def test_drift_is_reported_for_a_hand_edited_generated_file() -> None:
    files = kr.render_tree()
    assert kr.check(files) == []
    path = kr.K8S / "base" / "ocr.yaml"
    edited = dict(files)
    edited[path] = files[path].replace("replicas: 2", "replicas: 3", 1)
    [problem] = kr.check(edited)
    assert "k8s/base/ocr.yaml: differs" in problem


def test_strict_schemas_reject_unknown_fields_and_kinds_without_schema() -> None:
    [dep] = [o for o in kr.helm_template(kr.values_for([])) if o["kind"] == "Deployment"][:1]
    bad = copy.deepcopy(dep)
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    stranger = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(kc.Failed, match="readinessProbes"):
        kc.check_core_schemas({"t": [bad]})
    with pytest.raises(kc.Failed, match="Couldn't find schema"):
        kc.check_core_schemas({"t": [stranger]})
    assert "valid" in kc.check_core_schemas({"t": [dep]})


@pytest.mark.skipif(
    not (kc.TOOLS / "crd-validate" / "node_modules").exists(), reason="run `make tools`"
)
def test_crd_validation_rejects_unknown_fields_and_wrong_types(prod: list[dict[str, Any]]) -> None:
    rollout = next(o for o in prod if o["kind"] == "Rollout")
    monitor = next(o for o in prod if o["kind"] == "ServiceMonitor")
    typo = copy.deepcopy(rollout)
    typo["spec"]["strategy"]["canary"]["stepz"] = typo["spec"]["strategy"]["canary"].pop("steps")
    with pytest.raises(kc.Failed, match="stepz"):
        kc.check_crd_schemas({"t": [typo]})
    wrong = copy.deepcopy(monitor)
    wrong["spec"]["endpoints"][0]["interval"] = 15
    with pytest.raises(kc.Failed, match="interval"):
        kc.check_crd_schemas({"t": [wrong]})
    assert "valid" in kc.check_crd_schemas({"t": [rollout, monitor]})


def test_the_base_is_what_kustomize_renders(tmp_path: Path) -> None:
    rendered = {(o["kind"], o["metadata"]["name"]) for o in kr.kustomize(kr.K8S / "base")}
    assert ("Namespace", "docsum") in rendered
    services = ("ocr", "summarizer", "gateway")  # the workers are the jobs component's
    assert {("Deployment", f"docsum-{s}") for s in services} <= rendered
    assert {("PodDisruptionBudget", f"docsum-{s}") for s in services} <= rendered


def test_the_adapter_serves_every_pods_metric_the_hpas_use_and_the_pods_export_them(
    prod: list[dict[str, Any]],
) -> None:
    import yaml

    values = kr.K8S / "components" / "autoscaling" / "prometheus-adapter-values.yaml"
    served = {r["name"]["as"] for r in yaml.safe_load(values.read_text())["rules"]["custom"]}
    used = {
        m["pods"]["metric"]["name"]
        for o in prod
        if o["kind"] == "HorizontalPodAutoscaler"
        for m in o["spec"]["metrics"]
        if m["type"] == "Pods"
    }
    assert used == {"docsum_inference_queue_depth", "docsum_gpu_utilization_ratio"}
    assert used <= served
    exported = (ROOT / "services" / "common" / "metrics.py").read_text() + (
        ROOT / "services" / "ocr" / "gpu.py"
    ).read_text()
    for name in used:
        assert f'"{name}"' in exported, f"no service exports {name}"
