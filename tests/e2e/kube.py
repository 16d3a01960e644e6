"""Deploy a kustomize overlay on podman (``podman kube play``) the way a cluster would run it.

podman plays Deployments, ConfigMaps and Secrets with their securityContext, volumes and env.
What it does not do is done here, each the way Kubernetes does it, and nothing else:

* Services: each Service's name becomes a DNS alias, on the stack's network, of every pod its
  selector matches, a pod taking the names of all the Services that select it. For a headless
  Service (``clusterIP: None``) that is what cluster DNS does: aardvark-dns answers with every
  pod's address. For a ClusterIP Service cluster DNS gives one virtual IP instead; the name is
  what clients use.
* Readiness: podman 4 ignores ``readinessProbe``; :meth:`Stack.wait_ready` runs each
  container's probe (httpGet on the pod's IP) until it succeeds, like the kubelet.

Two podman 4.3 (Debian bookworm) bugs are worked around in :func:`adapt`, without changing what
the pods see: a Secret volume's files are written still base64-encoded (the Secret is played as
a ConfigMap with the decoded data, mounted at the same path), and an emptyDir becomes a named
volume called after the pod's volume (``tmp``), which every pod would share (each pod's gets a
name of its own).

Other kinds (Namespace, ServiceAccount, PodDisruptionBudget, NetworkPolicy, HPA) are left out
and listed; docs/deploy.md says how each is checked instead.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYED_KINDS = ("ConfigMap", "Secret", "Deployment")


def podman(*args: str, check: bool = True, timeout: float = 300) -> str:
    proc = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def render(overlay: Path) -> list[dict[str, Any]]:
    kubectl = ROOT / ".tools" / "bin" / "kubectl"
    out = subprocess.run(
        [str(kubectl), "kustomize", str(overlay)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def api_key_secret(name: str, key_name: str, key: str) -> dict[str, Any]:
    """The Secret a user makes with ``kubectl create secret generic`` (docs/deploy.md)."""
    import hashlib

    line = f"{key_name}:{hashlib.sha256(key.encode()).hexdigest()}\n"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "docsum"},
        "type": "Opaque",
        "data": {"api-keys": base64.b64encode(line.encode()).decode()},
    }


def adapt(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The docs as podman 4.3 plays them faithfully (see the module's docstring)."""
    out = []
    for doc in docs:
        if doc["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()}
            data |= doc.get("stringData", {})
            doc = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": doc["metadata"],
                "data": data,
            }
        elif doc["kind"] == "Deployment":
            doc = json.loads(json.dumps(doc))
            spec = doc["spec"]["template"]["spec"]
            renamed = {}
            for vol in spec.get("volumes", []):
                if "secret" in vol:
                    src = vol.pop("secret")
                    vol["configMap"] = {"name": src["secretName"]}
                    vol["configMap"] |= {k: src[k] for k in ("items", "optional") if k in src}
                if "emptyDir" in vol:
                    renamed[vol["name"]] = f"{doc['metadata']['name']}-{vol['name']}"
                    vol["name"] = renamed[vol["name"]]
            for c in spec["containers"]:
                for mount in c.get("volumeMounts", []):
                    mount["name"] = renamed.get(mount["name"], mount["name"])
        out.append(doc)
    return out


def volume_names(docs: Iterable[dict[str, Any]]) -> set[str]:
    """The named volumes podman makes for the docs' ConfigMap and emptyDir volumes."""
    names = set()
    for doc in docs:
        if doc["kind"] == "Deployment":
            for vol in doc["spec"]["template"]["spec"].get("volumes", []):
                if "configMap" in vol:
                    names.add(vol["configMap"]["name"])
                elif "emptyDir" in vol:
                    names.add(vol["name"])
    return names


def service_aliases(
    deployments: Iterable[dict[str, Any]], services: Iterable[dict[str, Any]]
) -> dict[str, list[str]]:
    """Pod (as podman names it) → the names of every Service whose selector matches its labels,
    ClusterIP and headless alike."""
    services = list(services)
    out: dict[str, list[str]] = {}
    for dep in deployments:
        labels = dep["spec"]["template"]["metadata"]["labels"]
        names = [
            svc["metadata"]["name"]
            for svc in services
            # a Service without a selector selects no pod (its endpoints are managed by hand)
            if (selector := svc["spec"].get("selector"))
            and all(labels.get(k) == v for k, v in selector.items())
        ]
        if names:
            out[f"{dep['metadata']['name']}-pod-0"] = names
    return out


@dataclass
class Container:
    pod: str
    name: str
    spec: dict[str, Any]

    @property
    def podman_name(self) -> str:
        return f"{self.pod}-{self.name}"

    def port(self, ref: int | str) -> int:
        if isinstance(ref, int):
            return ref
        for p in self.spec.get("ports", []):
            if p.get("name") == ref:
                return int(p["containerPort"])
        raise KeyError(f"{self.name}: no port named {ref!r}")


@dataclass
class Stack:
    """One overlay played on its own podman network; :meth:`down` removes all of it."""

    network: str
    docs: list[dict[str, Any]]
    skipped: dict[str, int] = field(default_factory=dict)
    containers: list[Container] = field(default_factory=list)
    _file: Path | None = None

    @classmethod
    def from_docs(cls, network: str, docs: Iterable[dict[str, Any]]) -> Stack:
        played: list[dict[str, Any]] = []
        skipped: dict[str, int] = {}
        for doc in docs:
            if doc["kind"] in PLAYED_KINDS:
                played.append(doc)
            else:
                skipped[doc["kind"]] = skipped.get(doc["kind"], 0) + 1
        stack = cls(network=network, docs=adapt(played), skipped=skipped)
        for dep in stack.deployments():
            pod = f"{dep['metadata']['name']}-pod-0"
            for c in dep["spec"]["template"]["spec"]["containers"]:
                stack.containers.append(Container(pod, c["name"], c))
        return stack

    def deployments(self) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == "Deployment"]

    # --- lifecycle --------------------------------------------------------------------------
    def up(self, services: Iterable[dict[str, Any]]) -> None:
        self.down()  # leftovers of an interrupted run
        podman("network", "create", self.network)
        fd, name = tempfile.mkstemp(prefix="docsum-e2e-", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump_all(self.docs, f, sort_keys=False)
        self._file = Path(name)
        podman("kube", "play", "--network", self.network, str(self._file), timeout=600)
        for pod, names in service_aliases(self.deployments(), services).items():
            # A pod's aliases are set when it joins the network: all of them at once.
            infra = self.infra(pod)
            podman("network", "disconnect", self.network, infra)
            flags = [arg for name in names for arg in ("--alias", name)]
            podman("network", "connect", *flags, self.network, infra)

    def down(self) -> None:
        """Remove the pods, their volumes and the network; safe to call twice or on failure."""
        if self._file is not None:
            podman("kube", "down", str(self._file), check=False)
            self._file.unlink(missing_ok=True)
            self._file = None
        for dep in self.deployments():
            podman(
                "pod", "rm", "--force", "--ignore", f"{dep['metadata']['name']}-pod-0", check=False
            )
        for volume in volume_names(self.docs):
            podman("volume", "rm", "--force", volume, check=False)
        podman("network", "rm", "--force", self.network, check=False)

    def leftovers(self) -> list[str]:
        """Pods, containers and networks of this stack still present."""
        pods = {f"{d['metadata']['name']}-pod-0" for d in self.deployments()}
        found = [p for p in podman("pod", "ps", "--format", "{{.Name}}").split() if p in pods]
        found += [
            c
            for c in podman("ps", "-a", "--format", "{{.Names}}").split()
            if any(c.startswith(p) for p in pods)
        ]
        if self.network in podman("network", "ls", "--format", "{{.Name}}").split():
            found.append(f"network {self.network}")
        volumes = set(podman("volume", "ls", "--format", "{{.Name}}").split())
        found += [f"volume {v}" for v in sorted(volumes & volume_names(self.docs))]
        return found

    # --- inspection -------------------------------------------------------------------------
    def infra(self, pod: str) -> str:
        return podman("pod", "inspect", pod, "--format", "{{.InfraContainerID}}").strip()

    def pod_ip(self, pod: str) -> str:
        info = json.loads(podman("inspect", self.infra(pod)))[0]
        return str(info["NetworkSettings"]["Networks"][self.network]["IPAddress"])

    def inspect(self, container: Container) -> dict[str, Any]:
        return dict(json.loads(podman("inspect", container.podman_name))[0])

    def exec(self, container: Container, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", "exec", container.podman_name, *cmd],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def logs(self, container: Container, tail: int = 40) -> str:
        return podman("logs", "--tail", str(tail), container.podman_name, check=False)

    def probe(self, container: Container, kind: str = "readinessProbe") -> tuple[bool, str]:
        """Run the container's httpGet probe once against the pod's IP, like the kubelet."""
        spec = container.spec[kind]["httpGet"]
        url = f"http://{self.pod_ip(container.pod)}:{container.port(spec['port'])}{spec['path']}"
        timeout = float(container.spec[kind].get("timeoutSeconds", 1))
        try:
            with urllib.request.urlopen(url, timeout=max(timeout, 2.0)) as resp:
                return 200 <= resp.status < 400, f"{url} → {resp.status}"
        except urllib.error.HTTPError as exc:
            return False, f"{url} → {exc.code}"
        except OSError as exc:
            return False, f"{url} → {exc}"

    def wait_ready(self, containers: Iterable[Container], timeout_s: float) -> dict[str, float]:
        """Seconds until each container's readiness probe passed; raises after ``timeout_s``."""
        started = time.monotonic()
        waiting = {c.podman_name: c for c in containers}
        ready: dict[str, float] = {}
        last: dict[str, str] = {}
        while waiting:
            for name, c in list(waiting.items()):
                ok, last[name] = self.probe(c)
                if ok:
                    ready[name] = time.monotonic() - started
                    del waiting[name]
            if not waiting:
                break
            if time.monotonic() - started > timeout_s:
                detail = "\n".join(f"{n}: {last[n]}\n{self.logs(c)}" for n, c in waiting.items())
                raise TimeoutError(f"not ready after {timeout_s:.0f} s:\n{detail}")
            time.sleep(1.0)
        return ready
