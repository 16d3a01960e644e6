"""What users of well-kept charts take for granted: helm.sh/chart, a `helm test` hook, a README
made from the values, IfNotPresent, the usual per-service keys, a runbook base URL; and the
probe listener wired through probes.separatePort."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import chart_readme
import k8s_render as kr

if not (kr.TOOLS_BIN / "helm").exists():
    pytest.skip("helm not installed: run `make tools`", allow_module_level=True)

SERVICES = ("ocr", "summarizer", "gateway")
KEYS = {"gateway": {"apiKeys": {"hashed": ["ci:" + "0" * 64]}}}


def render(*features: str, **values: Any) -> list[dict[str, Any]]:
    return kr.helm_template(kr.merge(kr.values_for(features, {}), values))


def one(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [obj] = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def containers(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]
        for o in objs
        if o["kind"] in kr.WORKLOAD_KINDS
    }


def test_every_object_has_helm_sh_chart_but_no_pod_template_does() -> None:
    objs = render("monitoring", "ingress", "autoscaling")
    chart = yaml.safe_load((kr.CHART / "Chart.yaml").read_text())
    want = f"{chart['name']}-{chart['version']}"
    for obj in objs:
        assert obj["metadata"]["labels"]["helm.sh/chart"] == want, obj["metadata"]["name"]
        if obj["kind"] in kr.WORKLOAD_KINDS:
            # a chart upgrade that changes nothing in the pods must not restart them
            assert "helm.sh/chart" not in obj["spec"]["template"]["metadata"]["labels"]


def test_images_are_pulled_if_not_present_by_default() -> None:
    objs = render("canary")
    pods = [o["spec"]["template"]["spec"] for o in objs if o["kind"] in kr.WORKLOAD_KINDS]
    pods += [o["spec"] for o in objs if o["kind"] == "Pod"]
    assert len(pods) == 6
    for pod in pods:
        assert {c["imagePullPolicy"] for c in pod["containers"]} == {"IfNotPresent"}


def test_per_service_env_annotations_labels_scheduling_and_service_account() -> None:
    extra = {
        "extraEnv": [
            {"name": "HTTPS_PROXY", "value": "http://proxy:3128"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}},
        ],
        "podAnnotations": {"example.com/scrape": "no"},
        "podLabels": {"team": "docs"},
        "nodeSelector": {"pool": "cpu"},
        "tolerations": [{"key": "pool", "operator": "Equal", "value": "cpu"}],
        "affinity": {"nodeAffinity": {}},
        "serviceAccount": {"create": False, "name": "shared-sa"},
    }
    annotated = {"serviceAccount": {"annotations": {"iam.example.com/role": "ocr"}}}
    objs = render(summarizer=extra, ocr=annotated)
    summarizer = one(objs, "Deployment", "docsum-summarizer")
    pod = summarizer["spec"]["template"]
    [c] = pod["spec"]["containers"]
    assert c["env"][-2:] == extra["extraEnv"]
    assert pod["metadata"]["annotations"]["example.com/scrape"] == "no"
    assert pod["metadata"]["labels"]["team"] == "docs"
    assert "team" not in summarizer["spec"]["selector"]["matchLabels"]
    assert pod["spec"]["nodeSelector"] == extra["nodeSelector"]
    assert pod["spec"]["tolerations"] == extra["tolerations"]
    assert pod["spec"]["affinity"] == extra["affinity"]
    assert pod["spec"]["serviceAccountName"] == "shared-sa"
    accounts = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ServiceAccount"}
    assert set(accounts) == {"docsum-ocr", "docsum-gateway"}
    assert accounts["docsum-ocr"]["metadata"]["annotations"] == {"iam.example.com/role": "ocr"}
    assert accounts["docsum-ocr"]["automountServiceAccountToken"] is False
    ocr = one(objs, "Deployment", "docsum-ocr")["spec"]["template"]
    assert "annotations" not in accounts["docsum-gateway"]["metadata"]
    assert ocr["spec"]["serviceAccountName"] == "docsum-ocr"
    assert "team" not in ocr["metadata"]["labels"]


def test_alert_runbooks_point_at_the_runbook_base_url() -> None:
    base = "https://wiki.example.com/docsum/runbook"
    objs = render("monitoring", monitoring={"runbookBaseURL": base})
    [rule] = [o for o in objs if o["kind"] == "PrometheusRule"]
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert alerts
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        assert url == f"{base}#{alert['alert'].lower()}", url


def _smoke_pod(objs: list[dict[str, Any]]) -> dict[str, Any]:
    [pod] = [o for o in objs if o["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    return pod


def test_helm_test_checks_every_service_and_summarizes_with_the_release_key() -> None:
    objs = render(**KEYS)
    pod = _smoke_pod(objs)
    [c] = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in c["env"]}
    services = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Service"}
    for url in env["READYZ"].split():
        host, port = url.removeprefix("http://").split("/")[0].split(":")
        assert url.endswith("/readyz")
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}
    assert len(env["READYZ"].split()) == 3
    assert env["SUMMARIZE"] == "http://docsum-gateway:8080/api/v1/summarize"
    assert c["image"] == containers(objs)["docsum-gateway"]["image"]
    compile(c["command"][2], "smoke.py", "exec")
    # the key it mounts is one the gateway accepts
    [volume] = pod["spec"]["volumes"]
    secret = one(objs, "Secret", volume["secret"]["secretName"])
    key = base64.b64decode(secret["data"]["api-key"]).decode()
    keys = one(objs, "Secret", "docsum-api-keys")["stringData"]  # pragma: allowlist secret
    accepted = keys["api-keys"].split()
    assert f"helm-test:{hashlib.sha256(key.encode()).hexdigest()}" in accepted
    assert "ci:" + "0" * 64 in accepted


def test_helm_test_uses_the_users_key_secret_when_given() -> None:
    objs = render(**KEYS, tests={"apiKey": {"existingSecret": "my-test-key"}})
    [volume] = _smoke_pod(objs)["spec"]["volumes"]
    assert volume["secret"]["secretName"] == "my-test-key"  # pragma: allowlist secret
    assert not [o for o in objs if o["metadata"]["name"] == "docsum-test-api-key"]
    accepted = one(objs, "Secret", "docsum-api-keys")["stringData"]["api-keys"]
    assert "helm-test:" not in accepted


def test_the_network_policies_let_the_test_pod_reach_each_service() -> None:
    objs = render("network-policies", **KEYS)
    labels = _smoke_pod(objs)["metadata"]["labels"]
    for name in ("docsum-ocr", "docsum-summarizer", "docsum-gateway"):
        policy = one(objs, "NetworkPolicy", name)
        peers = [p for rule in policy["spec"]["ingress"] for p in rule["from"]]
        assert any(
            "podSelector" in p and p["podSelector"]["matchLabels"].items() <= labels.items()
            for p in peers
        ), name
    egress = one(objs, "NetworkPolicy", "docsum-test")
    assert egress["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_the_smoke_script_fails_when_a_service_does_not_answer(tmp_path: Any) -> None:
    script = kr.CHART / "files" / "tests" / "smoke.py"
    env = {
        **os.environ,
        "READYZ": "http://127.0.0.1:9/readyz",
        "SUMMARIZE": "http://127.0.0.1:9/api/v1/summarize",
        "KEY_FILE": str(tmp_path / "absent"),
    }
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert '"status": 0' in proc.stdout and '"skipped"' in proc.stdout


def test_the_readme_documents_every_value_and_is_generated() -> None:
    assert chart_readme.undocumented() == []
    readme = (kr.CHART / "README.md").read_text()
    assert readme == chart_readme.render()
    for key in ("ocr.gpu.enabled", "probes.separatePort", "monitoring.runbookBaseURL"):
        assert f"`{key}`" in readme


def test_probe_listener_is_wired_only_with_separate_port() -> None:
    off = render("monitoring", "network-policies", probes={"separatePort": False})
    on = render("monitoring", "network-policies")  # the default
    for objs, port in ((off, "http"), (on, "probes")):
        for name, c in containers(objs).items():
            service = name.removeprefix("docsum-")
            env = {e["name"]: e.get("value") for e in c["env"]}
            probe_env = f"DOCSUM_{service.upper()}_PROBE_PORT"
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["httpGet"]["port"] == port, (name, probe)
            svc = one(objs, "Service", name)
            monitor = one(objs, "ServiceMonitor", name)
            assert [e["port"] for e in monitor["spec"]["endpoints"]] == [port]
            if port == "probes":
                assert env[probe_env] == str(ports["probes"])
                assert {p["name"]: p["targetPort"] for p in svc["spec"]["ports"]} == {
                    "http": "http",
                    "probes": "probes",
                }
            else:
                assert probe_env not in env and "probes" not in ports
                assert [p["name"] for p in svc["spec"]["ports"]] == ["http"]
        metrics = one(objs, "NetworkPolicy", "docsum-metrics")
        assert [p["port"] for r in metrics["spec"]["ingress"] for p in r["ports"]] == [port]
    probe_ports = {n: p["containerPort"] for n, c in containers(on).items() for p in c["ports"]}
    assert probe_ports == {"docsum-ocr": 9081, "docsum-summarizer": 9082, "docsum-gateway": 9080}
