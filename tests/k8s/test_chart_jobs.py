"""Async jobs on Kubernetes (issue 17): Redis and the workers as the chart renders them, the
NetworkPolicies around Redis, the workers' HPA on the backlog, and jobs off by default."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import k8s_render as kr

if not (kr.TOOLS_BIN / "helm").exists():
    pytest.skip("helm not installed: run `make tools`", allow_module_level=True)

POD_KINDS = (*kr.WORKLOAD_KINDS, "StatefulSet")
MiB = 2**20
UNITS = {"Mi": MiB, "Gi": 2**30}


def render(*features: str, **extra: Any) -> list[dict[str, Any]]:
    return kr.helm_template(kr.merge(kr.values_for(features, {}), extra))


def by_name(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [obj] = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"].get("app.kubernetes.io/component", ""))


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def mebibytes(q: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(Mi|Gi)", q).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit] / MiB


@pytest.fixture(scope="module")
def prod() -> list[dict[str, Any]]:
    return render(*kr.PROD)


def test_jobs_are_off_by_default_and_the_gateway_then_knows_no_redis() -> None:
    objs = render()
    assert not [o for o in objs if component(o) in ("worker", "redis")]
    [gateway] = by_name(objs, "Deployment", "docsum-gateway")["spec"]["template"]["spec"][
        "containers"
    ]
    assert not [v for v in env(gateway) if "REDIS" in v]


def test_every_pod_is_hardened_redis_and_the_workers_too(prod: list[dict[str, Any]]) -> None:
    pods = {o["metadata"]["name"]: o for o in prod if o["kind"] in POD_KINDS}
    assert {"docsum-redis", "docsum-worker"} <= set(pods)
    for name, obj in pods.items():
        spec = obj["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), name
            assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(c), name


def test_redis_keeps_an_append_only_file_on_a_volume_and_its_password_in_a_file(
    prod: list[dict[str, Any]],
) -> None:
    redis = by_name(prod, "StatefulSet", "docsum-redis")
    spec = redis["spec"]["template"]["spec"]
    [c] = spec["containers"]
    script = " ".join(c["args"])
    assert re.search(r"--appendonly yes --appendfsync everysec", script)
    assert "--dir /data" in script and "--maxmemory-policy noeviction" in script
    assert "docker.io/library/redis:7." in c["image"]
    # the password: read from the mounted Secret at start, never in env or the pod spec
    assert "requirepass" in script and "cat /etc/redis/auth/password" in script
    assert not c.get("env") and "REDIS_PASSWORD" not in yaml.safe_dump(redis)
    [claim] = redis["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data" and claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"]
    [auth] = [v for v in spec["volumes"] if v["name"] == "auth"]
    # the kustomize tree names the user's Secret; the chart makes one otherwise
    assert auth["secret"]["secretName"] == "docsum-redis-auth"
    service = by_name(prod, "Service", "docsum-redis")
    assert service["spec"]["clusterIP"] == "None"
    assert redis["spec"]["serviceName"] == "docsum-redis"


def test_the_gateway_and_the_workers_get_the_url_and_the_password_file(
    prod: list[dict[str, Any]],
) -> None:
    for name, prefix in (
        ("docsum-gateway", "DOCSUM_GATEWAY_"),
        ("docsum-worker", "DOCSUM_WORKER_"),
    ):
        [obj] = [
            o for o in prod if o["kind"] in kr.WORKLOAD_KINDS and o["metadata"]["name"] == name
        ]
        spec = obj["spec"]["template"]["spec"]
        [c] = spec["containers"]
        e = env(c)
        assert e[f"{prefix}REDIS_URL"] == "redis://docsum-redis:6379/0", name
        path = e[f"{prefix}REDIS_PASSWORD_FILE"]
        [mount] = [m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
        [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == "docsum-redis-auth"
        assert volume["secret"]["items"] == [{"key": "password", "path": "password"}]
    worker = by_name(prod, "Deployment", "docsum-worker")
    [c] = worker["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["serve", "worker"]
    # the gateway's image: its pipeline's dependencies (pypdfium2, httpx) and redis
    assert c["image"].startswith("ghcr.io/docsum/gateway:")
    assert env(c)["DOCSUM_WORKER_BACKENDS_FILE"] == "/etc/docsum/backends/backends.json"
    # a stopping worker finishes its job (DRAIN_S) before the kubelet kills it
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > 60 + 5


def test_the_chart_makes_a_password_per_release_unless_one_is_given() -> None:
    objs = render("jobs")
    secret = by_name(objs, "Secret", "docsum-redis-auth")
    assert len(secret["data"]["password"]) >= 40
    assert secret["metadata"]["labels"]["app.kubernetes.io/component"] == "redis"


def test_an_external_redis_replaces_the_statefulset_and_needs_a_secret() -> None:
    url = "rediss://cache.example.com:6380/0"
    external = {
        "jobs": {"redis": {"external": {"url": url}, "auth": {"existingSecret": "managed"}}}
    }
    objs = render("jobs", "network-policies", **external)
    assert not [o for o in objs if component(o) == "redis"]
    [c] = by_name(objs, "Deployment", "docsum-worker")["spec"]["template"]["spec"]["containers"]
    assert env(c)["DOCSUM_WORKER_REDIS_URL"] == url
    policy = by_name(objs, "NetworkPolicy", "docsum-worker")
    assert {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
        "ports": [{"protocol": "TCP", "port": 6379}],
    } in policy["spec"]["egress"]
    with pytest.raises(RuntimeError, match=r"needs jobs\.redis\.auth\.existingSecret"):
        render("jobs", jobs={"redis": {"external": {"url": url}}})


def _allowed_callers(objs: list[dict[str, Any]], target: str) -> set[str]:
    """Components whose pods the NetworkPolicies let reach ``target``'s pods."""
    callers = set()
    for p in objs:
        if p["kind"] != "NetworkPolicy":
            continue
        if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") != target:
            continue
        for rule in p["spec"].get("ingress", []):
            for peer in rule["from"]:
                callers.add(
                    peer.get("podSelector", {})
                    .get("matchLabels", {})
                    .get("app.kubernetes.io/component", "any")
                )
    return callers


def test_only_the_gateway_and_the_workers_reach_redis_and_workers_reach_the_models(
    prod: list[dict[str, Any]],
) -> None:
    assert _allowed_callers(prod, "redis") == {"gateway", "worker"}
    assert {"gateway", "worker"} <= _allowed_callers(prod, "ocr")
    assert {"gateway", "worker"} <= _allowed_callers(prod, "summarizer")
    worker = by_name(prod, "NetworkPolicy", "docsum-worker")
    reached = {
        (peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"], port["port"])
        for rule in worker["spec"]["egress"]
        for peer in rule["to"]
        for port in rule["ports"]
    }
    assert reached == {("ocr", 8081), ("summarizer", 8082), ("redis", 6379)}
    gateway = by_name(prod, "NetworkPolicy", "docsum-gateway")
    assert any(
        peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
        == "redis"
        for rule in gateway["spec"]["egress"]
        for peer in rule["to"]
    )
    # and the default deny covers Redis and the workers (they carry the release's labels)
    deny = by_name(prod, "NetworkPolicy", "docsum-default-deny")
    for name in ("docsum-redis", "docsum-worker"):
        obj = next(o for o in prod if o["metadata"]["name"] == name and o["kind"] in POD_KINDS)
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert deny["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_workers_scale_on_the_backlog_with_the_other_hpas_behaviour(
    prod: list[dict[str, Any]],
) -> None:
    hpas = {o["metadata"]["name"]: o for o in prod if o["kind"] == "HorizontalPodAutoscaler"}
    worker = hpas.pop("docsum-worker")
    assert worker["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "docsum-worker",
    }
    [metric] = worker["spec"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"] == {
        "name": "docsum_jobs_pending",
        "selector": {"matchLabels": {"app_kubernetes_io_instance": "docsum"}},
    }
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "4"}
    assert (worker["spec"]["minReplicas"], worker["spec"]["maxReplicas"]) == (1, 10)
    assert hpas and all(h["spec"]["behavior"] == worker["spec"]["behavior"] for h in hpas.values())
    assert "replicas" not in by_name(prod, "Deployment", "docsum-worker")["spec"]


def test_prometheus_adapter_serves_the_backlog_the_workers_export() -> None:
    values = kr.K8S / "components" / "autoscaling" / "prometheus-adapter-values.yaml"
    [rule] = yaml.safe_load(values.read_text())["rules"]["external"]
    assert rule["name"]["as"] == "docsum_jobs_pending"
    assert rule["seriesQuery"].startswith("docsum_jobs_pending{")
    # every worker reports the same backlog: max, never a sum over workers
    assert rule["metricsQuery"].startswith("max(")
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}}
    assert '"docsum_jobs_pending"' in (ROOT / "services" / "jobs" / "metrics.py").read_text()


def test_the_workers_are_scraped_and_drained_one_at_a_time(prod: list[dict[str, Any]]) -> None:
    monitor = by_name(prod, "ServiceMonitor", "docsum-worker")
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    assert monitor["spec"]["endpoints"][0]["port"] == "probes"
    service = by_name(prod, "Service", "docsum-worker")
    assert {p["name"] for p in service["spec"]["ports"]} == {"http", "probes"}
    pdb = by_name(prod, "PodDisruptionBudget", "docsum-worker")
    assert pdb["spec"]["maxUnavailable"] == 1


def test_the_gateway_s_memory_limit_holds_its_pdf_workers_at_their_caps() -> None:
    """The gateway (and a worker, the same pipeline) runs PDF_WORKERS processes of up to
    PDF_WORKER_MAX_RSS_BYTES each beside its own working set (its memory request)."""
    from docsum.gateway.settings import GatewaySettings

    s = GatewaySettings()
    pdf = s.pdf_workers * s.pdf_worker_max_rss_bytes / MiB
    objs = render("jobs")
    for name in ("docsum-gateway", "docsum-worker"):
        [c] = by_name(objs, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        own = mebibytes(c["resources"]["requests"]["memory"])
        assert mebibytes(c["resources"]["limits"]["memory"]) >= own + pdf, name


REDIS_BIN = ROOT / ".tools" / "redis" / "bin"


@pytest.mark.integration
@pytest.mark.skipif(
    not (REDIS_BIN / "redis-server").exists(),
    reason="Redis not installed (scripts/install_redis.sh)",
)
def test_the_rendered_start_script_and_probe_run_a_redis_that_wants_its_password(
    prod: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The StatefulSet's own shell lines, run with Debian's Redis 7 in place of the image's
    (paths moved under tmp_path): the server starts with the password from the file, appendonly
    on, and the readiness probe passes only with that password."""
    from tests.support.services import free_port

    [c] = by_name(prod, "StatefulSet", "docsum-redis")["spec"]["template"]["spec"]["containers"]
    port = free_port()
    (tmp_path / "auth").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "auth" / "password").write_text("s3cret-from-the-secret")

    def local(script: str) -> str:
        return (
            script.replace("/etc/redis/auth", str(tmp_path / "auth"))
            .replace("--dir /data", f"--dir {tmp_path / 'data'}")
            .replace("--port 6379", f"--port {port}")
            .replace("-p 6379", f"-p {port}")
            .replace("redis-server", str(REDIS_BIN / "redis-server"))
            .replace("redis-cli", str(REDIS_BIN / "redis-cli"))
        )

    assert c["command"] == ["sh", "-c"]
    server = subprocess.Popen(["sh", "-c", local(c["args"][0])], stdout=subprocess.DEVNULL)
    probe = local(c["readinessProbe"]["exec"]["command"][2])
    cli = [str(REDIS_BIN / "redis-cli"), "-p", str(port)]
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(["sh", "-c", probe], check=False).returncode != 0:
            assert server.poll() is None and time.monotonic() < deadline, "Redis did not start"
            time.sleep(0.2)
        no_auth = subprocess.run([*cli, "ping"], capture_output=True, text=True, check=False)
        assert "NOAUTH" in no_auth.stdout
        authed = {**os.environ, "REDISCLI_AUTH": "s3cret-from-the-secret"}
        for key, want in (("appendonly", "yes"), ("appendfsync", "everysec")):
            got = subprocess.run(
                [*cli, "config", "get", key], capture_output=True, text=True, env=authed, check=True
            )
            assert got.stdout.split() == [key, want]
        (tmp_path / "auth" / "password").write_text("another")
        assert subprocess.run(["sh", "-c", probe], check=False).returncode != 0
        # SIGTERM (the kubelet's stop): Redis is PID 1's exec, it flushes and exits
        server.terminate()
        assert server.wait(timeout=10) == 0
    finally:
        if server.poll() is None:
            server.kill()
