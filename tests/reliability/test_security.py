"""Security: keys never leak, limits are per key, nothing secret is committed or baked in,
containers are locked down, and the dependency set is pinned and installed from the pins."""

from __future__ import annotations

import hashlib
import re
import subprocess
import tomllib
from collections import Counter
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.services import ROOT, LiveService, free_port, start_gateway_alive

ALICE_KEY = "alice-7f3c9e1b2a64d580"
BOB_KEY = "bob-0d94b61e57c3a28f"
#: A key nobody has: it must not show up in any log either.
WRONG_KEY = "guess-5a1e8c3d9b7f2064"

#: What detect-secrets reports that is not a secret, by value, each with why.
NOT_SECRETS = {
    "docsum-tls": "the name of the Kubernetes Secret holding the TLS certificate",
    "docsum-api-keys": "the name of the Kubernetes Secret holding the key hashes",
    "docsum-loadgen": "the name of the Kubernetes Secret holding the load generator's key",
    "docsum-redis-auth": "the name of the Kubernetes Secret holding the Redis password",
    "managed-redis": "the name of a user's Secret for an external Redis (chart CI values)",
    "managed": "the name of a user's Secret for an external Redis (a render test)",
    "ABCDEFGHJKLMNPQRSTUVWXYZ": "the alphabet of synthetic OCR training codes",
}
WORKLOAD_KINDS = {"Deployment", "Rollout", "StatefulSet", "DaemonSet", "Job", "CronJob"}
K8S = ROOT / "k8s"


# ---------------------------------------------------------------- keys and limits (live)


@pytest.fixture(scope="module")
def keyed_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """A gateway with two keys, 1 request/s and a burst of 3 per key, upstreams down (the
    guard answers before any upstream is called)."""
    tmp = tmp_path_factory.mktemp("gateway-keys")
    keys = tmp / "keys"
    keys.write_text(
        "# two callers\n"
        f"alice:{hashlib.sha256(ALICE_KEY.encode()).hexdigest()}\n"
        f"bob:{hashlib.sha256(BOB_KEY.encode()).hexdigest()}\n"
    )
    down = f"http://127.0.0.1:{free_port()}"
    svc = start_gateway_alive(
        tmp,
        {
            "ocr": [{"url": down, "version": "stable", "weight": 100}],
            "summarizer": [{"url": down, "version": "stable", "weight": 100}],
        },
        {
            "DOCSUM_GATEWAY_API_KEYS_FILE": str(keys),
            "DOCSUM_GATEWAY_RATE_LIMIT_RPS": "1",
            "DOCSUM_GATEWAY_RATE_LIMIT_BURST": "3",
            "DOCSUM_GATEWAY_LOG_LEVEL": "DEBUG",
        },
    )
    yield svc
    svc.stop()


def _post(svc: LiveService, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{svc.url}/api/v1/summarize", json={"text": "Hello."}, headers=headers, timeout=10
    )


@pytest.mark.integration
@pytest.mark.slow
def test_rate_limits_are_per_key_and_say_when_to_come_back(keyed_gateway: LiveService) -> None:
    alice = Counter(_post(keyed_gateway, {"X-API-Key": ALICE_KEY}).status_code for _ in range(8))
    # Alice's burst of 3 went through the guard (to an upstream that is down: 503); the rest
    # were refused without touching it.
    assert alice[429] >= 4 and alice[503] <= 4 and set(alice) <= {429, 503}, alice
    r = _post(keyed_gateway, {"X-API-Key": ALICE_KEY})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"
    # Bob is not slowed down by Alice.
    bob = Counter(
        _post(keyed_gateway, {"Authorization": f"Bearer {BOB_KEY}"}).status_code for _ in range(3)
    )
    assert bob == Counter({503: 3}), bob


@pytest.mark.integration
@pytest.mark.slow
def test_keys_never_reach_logs_metrics_or_answers(keyed_gateway: LiveService) -> None:
    answers = [
        _post(keyed_gateway, {"X-API-Key": ALICE_KEY}),
        _post(keyed_gateway, {"Authorization": f"Bearer {BOB_KEY}"}),
        _post(keyed_gateway, {"X-API-Key": WRONG_KEY}),
        _post(keyed_gateway, {"Authorization": f"Bearer {WRONG_KEY}"}),
    ]
    assert [r.status_code for r in answers[2:]] == [401, 401]
    metrics = httpx.get(f"{keyed_gateway.url}/metrics", timeout=10).text
    seen = keyed_gateway.logs() + metrics + "".join(r.text + str(r.headers) for r in answers)
    for key in (ALICE_KEY, BOB_KEY, WRONG_KEY):
        assert key not in seen
        assert hashlib.sha256(key.encode()).hexdigest() not in seen
    assert "docsum_gateway_auth_failures_total" in metrics


# ---------------------------------------------------------------- what is committed


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    files = []
    for name in filter(None, out.split("\0")):
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        with path.open("rb") as fh:
            if b"\0" in fh.read(4096):  # binary: weights, checkpoints
                continue
        files.append(path)
    return files


@pytest.mark.slow
def test_no_secret_in_the_repository() -> None:
    """detect-secrets over every tracked text file, manifests and Dockerfiles included."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    files = _tracked_text_files()
    assert len(files) > 50
    with default_settings():
        found = SecretsCollection()
        found.scan_files(*(str(f) for f in files), num_processors=2)
    leaks = [
        f"{name}:{s.line_number}: {s.type}"
        for name, secrets in found.data.items()
        for s in secrets
        if s.secret_value not in NOT_SECRETS
    ]
    assert not leaks, "possible secrets committed:\n" + "\n".join(leaks)


def test_no_secret_is_baked_into_an_image() -> None:
    dockerfiles = sorted(ROOT.glob("services/*/Dockerfile")) + sorted(ROOT.glob("*/Dockerfile"))
    assert dockerfiles
    secretish = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)
    for path in dockerfiles:
        for line in path.read_text().splitlines():
            if re.match(r"\s*(ENV|ARG)\s", line):
                for name, _, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)(=|\s+)(\S*)", line):
                    assert not (secretish.search(name) and value), f"{path}: {line}"
            assert not re.search(r"COPY\s+.*(api-keys|\.env|\.pem|id_rsa)", line), f"{path}: {line}"
    # The build context is the package sources only: nothing else can be copied in.
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore


# ---------------------------------------------------------------- manifests


def _rendered() -> list[tuple[Path, dict[str, Any]]]:
    """Every object of every overlay as kustomize renders it (components' patch fragments are
    not objects: they are judged by what they make of the base)."""
    kubectl = ROOT / ".tools" / "bin" / "kubectl"
    if not kubectl.exists():
        pytest.skip("kubectl not installed (make tools)")
    objs = []
    for overlay in sorted((K8S / "overlays").iterdir()):
        out = subprocess.run(
            [str(kubectl), "kustomize", str(overlay)], capture_output=True, text=True, check=True
        ).stdout
        for obj in yaml.safe_load_all(out):
            if isinstance(obj, dict) and "kind" in obj:
                objs.append((overlay, obj))
    return objs


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template of a workload; None for a patch that holds none (``$patch: delete``,
    or one that changes other fields)."""
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    pod = spec.get("template", {}).get("spec")
    return dict(pod) if pod and "containers" in pod else None


@pytest.mark.skipif(not (K8S / "base").is_dir(), reason="no k8s/ manifests")
def test_every_container_is_non_root_read_only_and_unprivileged() -> None:
    workloads = [
        (p, o, pod)
        for p, o in _rendered()
        if o["kind"] in WORKLOAD_KINDS and (pod := _pod_spec(o)) is not None
    ]
    assert len(workloads) >= 3
    for path, obj, pod in workloads:
        where = f"{path.relative_to(ROOT)}: {obj['kind']}/{obj['metadata']['name']}"
        assert pod.get("securityContext", {}).get("runAsNonRoot") is True, where
        assert pod.get("automountServiceAccountToken") is False, where
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), where
        for c in pod.get("initContainers", []) + pod["containers"]:
            sc = c.get("securityContext", {})
            assert sc.get("readOnlyRootFilesystem") is True, f"{where} {c['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, f"{where} {c['name']}"
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), f"{where} {c['name']}"
            assert not sc.get("privileged"), f"{where} {c['name']}"
            assert sc.get("runAsUser", pod["securityContext"].get("runAsUser", 0)) != 0, where
            for env in c.get("env", []):
                if re.search(r"KEY|TOKEN|SECRET|PASSWORD", env["name"]) and "value" in env:
                    # Only a path to a mounted Secret may be given as a plain value.
                    assert env["value"].startswith("/"), f"{where}: {env}"


@pytest.mark.skipif(not (K8S / "base").is_dir(), reason="no k8s/ manifests")
def test_manifests_hold_no_secret_values_and_deny_traffic_by_default() -> None:
    objs = _rendered()
    for path, obj in objs:
        if obj["kind"] == "Secret":  # keys and certificates are created out of band
            assert not obj.get("data") and not obj.get("stringData"), path
    policies = [o for _, o in objs if o["kind"] == "NetworkPolicy"]
    deny_all = [
        p
        for p in policies
        # all pods, or all of this release's pods (two releases may share a namespace)
        if set(p["spec"].get("podSelector", {}).get("matchLabels", {}))
        <= {"app.kubernetes.io/instance", "app.kubernetes.io/name"}
        and not p["spec"]["podSelector"].get("matchExpressions")
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny_all, "no default-deny NetworkPolicy"
    prod = yaml.safe_load((K8S / "overlays" / "prod" / "kustomization.yaml").read_text())
    assert "../../components/network-policies" in prod.get("components", [])


# ---------------------------------------------------------------- the dependency set


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def test_every_dependency_is_pinned_and_installed_at_its_pin() -> None:
    """Every distribution docsum needs (all extras, transitively) is pinned in
    constraints.txt, and this environment has exactly those versions. torch is pinned in
    pyproject itself (its CPU/CUDA wheels come from their own index)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    todo += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    pins = _pins()
    seen: dict[str, str] = {}
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        dist = metadata.distribution(req.name)
        seen[name] = dist.version
        for spec in dist.requires or []:
            sub = Requirement(spec)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):
                todo.append(sub)
    unpinned = sorted(set(seen) - set(pins) - {"torch"})
    assert not unpinned, f"not pinned in constraints.txt: {unpinned}"
    drift = {n: (v, pins[n]) for n, v in seen.items() if n in pins and v != pins[n]}
    assert not drift, f"installed ≠ pinned: {drift}"
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt" in makefile
    for dockerfile in ROOT.glob("services/*/Dockerfile"):
        installs = [line for line in dockerfile.read_text().splitlines() if "pip install" in line]
        assert any("-c constraints.txt" in line for line in installs), dockerfile
