"""The hand-written overlays: dev fits a laptop cluster; local stays what `make e2e` plays."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import k8s_render as kr

if not (kr.TOOLS_BIN / "kubectl").exists():
    pytest.skip("kubectl not installed: run `make tools`", allow_module_level=True)

UNITS = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(q: str | int | float) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(q)).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def pod_specs(objs: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(replicas, pod spec) of every workload."""
    return [
        (o["spec"].get("replicas", 1), o["spec"]["template"]["spec"])
        for o in objs
        if o["kind"] in kr.WORKLOAD_KINDS
    ]


def test_dev_fits_a_laptop_cluster_with_cpu_images() -> None:
    """kind or minikube on a laptop: ≤ 2 CPU and ≤ 4 GiB requested in all, nothing CUDA."""
    cpu = memory = 0.0
    for replicas, pod in pod_specs(kr.kustomize(kr.K8S / "overlays" / "dev")):
        assert "nodeSelector" not in pod and "runtimeClassName" not in pod
        for c in pod["containers"]:
            requests = c["resources"]["requests"]
            assert set(requests) == {"cpu", "memory"}, c["name"]
            cpu += replicas * quantity(requests["cpu"])
            memory += replicas * quantity(requests["memory"])
            repository, tag = c["image"].rsplit(":", 1)
            assert repository == f"ghcr.io/docsum/{c['name']}" and "cuda" not in tag, c["image"]
            env = {e["name"]: e.get("value") for e in c["env"]}
            assert env.get(f"DOCSUM_{c['name'].upper()}_DEVICE", "cpu") == "cpu"
    assert cpu <= 2.0, f"dev requests {cpu} CPU"
    assert memory <= 4 * 2**30, f"dev requests {memory / 2**30:.2f} GiB"


def test_local_is_dev_with_the_locally_built_images_and_the_gateway_on_the_host() -> None:
    dev = {(o["kind"], o["metadata"]["name"]): o for o in kr.kustomize(kr.K8S / "overlays" / "dev")}
    local = kr.kustomize(kr.K8S / "overlays" / "local")
    assert {(o["kind"], o["metadata"]["name"]) for o in local} == set(dev)
    for replicas, pod in pod_specs(local):
        [c] = pod["containers"]
        assert replicas == 1
        assert c["image"].startswith(f"localhost/docsum/{c['name']}:")
        assert c["imagePullPolicy"] == "Never"
        [dev_c] = dev["Deployment", f"docsum-{c['name']}"]["spec"]["template"]["spec"]["containers"]
        assert c["resources"] == dev_c["resources"]
        host_ports = [p.get("hostPort") for p in c["ports"] if p.get("hostPort")]
        assert host_ports == ([18080] if c["name"] == "gateway" else [])


def test_prod_runs_the_cuda_build_of_the_ocr_image_on_gpu_pods() -> None:
    images = {
        c["name"]: c["image"]
        for _, pod in pod_specs(kr.kustomize(kr.K8S / "overlays" / "prod"))
        for c in pod["containers"]
    }
    assert images["ocr"].endswith("-cuda")
    assert not images["summarizer"].endswith("-cuda")


USER_COMPONENT = """
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
  - target: {kind: Deployment, name: docsum-ocr}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/env/0
        value: {name: HTTPS_PROXY, value: "http://proxy:3128"}
      - op: add
        path: /spec/template/spec/containers/0
        value:
          name: log-shipper
          image: example.com/shipper:1
          env: [{name: LEVEL, value: info}]
"""


def _with_user_component_first(tmp_path: Path, components: list[str]) -> list[dict[str, Any]]:
    user = tmp_path / "user"
    user.mkdir()
    (user / "kustomization.yaml").write_text(USER_COMPONENT)
    top = tmp_path / "overlay"
    top.mkdir()
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(kr.K8S / "base", top)],
        "components": [
            "../user",
            *(os.path.relpath(kr.K8S / "components" / c, top) for c in components),
        ],
    }
    (top / "kustomization.yaml").write_text(yaml.safe_dump(doc))
    return kr.kustomize(top)


@pytest.mark.parametrize("components", [["gpu"], kr.PROD], ids=["gpu", "prod"])
def test_components_patch_containers_by_name_after_a_user_component(
    tmp_path: Path, components: list[str]
) -> None:
    """A user's sidecar and env var put first must not shift what the chart's components set."""
    objs = _with_user_component_first(tmp_path, components)
    [ocr] = [
        o for o in objs if o["kind"] in kr.WORKLOAD_KINDS and o["metadata"]["name"] == "docsum-ocr"
    ]
    containers = {c["name"]: c for c in ocr["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"log-shipper", "ocr"}
    assert containers["log-shipper"] == {
        "name": "log-shipper",
        "image": "example.com/shipper:1",
        "env": [{"name": "LEVEL", "value": "info"}],
    }
    c = containers["ocr"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["HTTPS_PROXY"] == "http://proxy:3128"
    assert env["DOCSUM_OCR_PORT"] == "8081"
    assert env["DOCSUM_OCR_DEVICE"] == "cuda"
    assert env["DOCSUM_OCR_TORCH_THREADS"] == str(c["resources"]["limits"]["cpu"])
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["image"].endswith("-cuda")
    # everything else is what the chart renders with the same features
    [helm] = [
        o
        for o in kr.helm_template(kr.values_for(components))
        if o["kind"] == ocr["kind"] and o["metadata"]["name"] == "docsum-ocr"
    ]
    c["env"] = [e for e in c["env"] if e["name"] != "HTTPS_PROXY"]
    ocr["spec"]["template"]["spec"]["containers"] = [c]
    assert kr.canonical(ocr) == kr.canonical(helm)


def test_no_generated_json_patch_addresses_a_list_element_by_position() -> None:
    for path in (kr.K8S / "components").glob("*/patches/*.yaml"):
        doc = yaml.safe_load(path.read_text())
        if isinstance(doc, list):
            assert not kr._indexed(doc), f"{path}: {[op['path'] for op in doc]}"


def _namespace_refs(obj: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every value ``obj`` holds under a key that names a namespace."""
    out: list[tuple[str, Any]] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            here = f"{path}/{key}"
            if key in ("namespace", "matchNames") and not isinstance(value, dict):
                out.append((here, value))
            out += _namespace_refs(value, here)
        if obj.get("name") == "namespace" and "value" in obj:  # an analysis argument
            out.append((f"{path}/value", obj["value"]))
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            out += _namespace_refs(item, f"{path}/{i}")
    return out


def test_prod_moved_to_another_namespace_points_nowhere_at_docsum(tmp_path: Path) -> None:
    """kustomize's `namespace:` on top of prod: scrapes and gates follow the objects."""
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "other",
        "resources": [os.path.relpath(kr.K8S / "overlays" / "prod", tmp_path)],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(doc))
    objs = kr.kustomize(tmp_path)
    kinds = {o["kind"] for o in objs}
    assert {"ServiceMonitor", "Rollout", "AnalysisTemplate"} <= kinds
    for obj in objs:
        for where, value in _namespace_refs(obj):
            assert "docsum" not in str(value), f"{obj['kind']}/{obj['metadata']['name']}{where}"
    rollout = next(o for o in objs if o["kind"] == "Rollout" and "canary" in o["spec"]["strategy"])
    args = {a["name"]: a for a in rollout["spec"]["strategy"]["canary"]["analysis"]["args"]}
    assert args["namespace"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
