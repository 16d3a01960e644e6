"""Fixtures for `docsum rollout`: a Kubernetes API emulator and a real Prometheus.

* Kubernetes: kmock's ``KubernetesEmulator`` (the ``kmock`` fixture, a real HTTP server on
  127.0.0.1 that stores objects and applies patches); ``docsum rollout`` reaches it through a
  kubeconfig, as it would a cluster.
* Prometheus: the real server from Debian's package (``make tools``), loaded with series
  written by ``promtool tsdb create-blocks-from openmetrics``: the gate queries run as PromQL
  on data shaped like what the gateway exports.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import ROOT, LiveService, free_port, spawn

PROMETHEUS = ROOT / ".tools" / "prometheus" / "bin" / "prometheus"
PROMTOOL = ROOT / ".tools" / "prometheus" / "bin" / "promtool"
NAMESPACE = "docsum"
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class Traffic:
    """One cohort's traffic: calls per second, share of errors, and every call's latency (s)."""

    labels: dict[str, str]
    rps: float = 20.0
    error_ratio: float = 0.0
    latency_s: float = 0.2
    error_status: str = "500"


def openmetrics(
    cohorts: list[Traffic], requests: str, duration: str, minutes: int = 10, step_s: int = 15
) -> str:
    """Counters and histograms of ``cohorts`` for the last ``minutes``, one sample per step."""
    now = int(time.time())
    stamps = range(now - minutes * 60, now + 1, step_s)
    req_lines, hist_lines = [], []
    for c in cohorts:
        labels = ",".join(f'{k}="{v}"' for k, v in c.labels.items())
        for status, share in (("200", 1 - c.error_ratio), (c.error_status, c.error_ratio)):
            for i, t in enumerate(stamps):
                value = c.rps * step_s * i * share
                req_lines.append(f'{requests}_total{{{labels},status="{status}"}} {value} {t}')
        for le in (*BUCKETS, float("inf")):
            le_s = "+Inf" if le == float("inf") else f"{le}"
            for i, t in enumerate(stamps):
                value = c.rps * step_s * i * (1.0 if c.latency_s <= le else 0.0)
                hist_lines.append(f'{duration}_bucket{{{labels},le="{le_s}"}} {value} {t}')
        for suffix, per_call in (("_count", 1.0), ("_sum", c.latency_s)):
            for i, t in enumerate(stamps):
                hist_lines.append(
                    f"{duration}{suffix}{{{labels}}} {c.rps * step_s * i * per_call} {t}"
                )
    return "\n".join(
        [
            f"# TYPE {requests} counter",
            *req_lines,
            f"# TYPE {duration} histogram",
            *hist_lines,
            "# EOF",
            "",
        ]
    )


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    """``start(openmetrics_text) -> url``: a Prometheus on 127.0.0.1 serving those series."""
    if not (PROMETHEUS.exists() and PROMTOOL.exists()):
        pytest.skip("Prometheus not installed: run `make tools`")
    servers: list[LiveService] = []

    def start(text: str) -> str:
        d = tmp_path / f"prom{len(servers)}"
        d.mkdir()
        (d / "series.om").write_text(text)
        subprocess.run(
            [str(PROMTOOL), "tsdb", "create-blocks-from", "openmetrics", "series.om", "data"],
            cwd=d,
            check=True,
            capture_output=True,
        )
        (d / "prometheus.yml").write_text("global: {scrape_interval: 1m}\nscrape_configs: []\n")
        port = free_port()
        command = [
            str(PROMETHEUS),
            f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        server = spawn("prometheus", command, port, d / "prometheus.log")
        servers.append(server)
        server.wait_until_ok("/-/ready", 60)
        return server.url

    yield start
    for server in servers:
        server.stop(grace_s=10)


@pytest.fixture
def kubeconfig(kmock: Any, tmp_path: Path) -> Path:
    """A kubeconfig whose cluster is the kmock emulator (plain HTTP, no credentials)."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url)}}],
                "users": [{"name": "test", "user": {}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "test"}}],
                "current-context": "kmock",
            }
        )
    )
    return path


class Cluster:
    """Objects in the emulator, as the chart creates them."""

    def __init__(self, kmock: Any) -> None:
        self.kmock = kmock
        self.configmaps = kmock.resource("v1/configmaps")
        self.services = kmock.resource("v1/services")

    def put_backends(self, backends: dict[str, Any]) -> None:
        self.kmock.objects[self.configmaps, NAMESPACE, "docsum-gateway-backends"] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "docsum-gateway-backends", "namespace": NAMESPACE},
            "data": {"backends.json": json.dumps(backends)},
        }

    def backends(self) -> dict[str, Any]:
        obj = self.kmock.objects[self.configmaps, NAMESPACE, "docsum-gateway-backends"]
        return dict(json.loads(obj.raw["data"]["backends.json"]))

    def put_service(self, name: str, slot: str) -> None:
        self.kmock.objects[self.services, NAMESPACE, name] = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "selector": {"app.kubernetes.io/component": "gateway", "docsum.io/slot": slot},
                "ports": [{"name": "http", "port": 8080, "targetPort": "http"}],
            },
        }

    def service(self, name: str) -> dict[str, Any]:
        return dict(self.kmock.objects[self.services, NAMESPACE, name].raw)

    def patches(self) -> int:
        return len(self.kmock["patch"])


@pytest.fixture
def cluster(kmock: Any) -> Cluster:
    return Cluster(kmock)


@dataclass
class Result:
    code: int
    out: str
    err: str


async def rollout(kubeconfig: Path, prometheus_url: str, *args: str) -> Result:
    """Run ``docsum rollout ARGS`` as a process (the emulator serves from this event loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "docsum.cli",
        "rollout",
        *args,
        "--kubeconfig",
        str(kubeconfig),
        "--prometheus-url",
        prometheus_url,
        "-n",
        NAMESPACE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return Result(int(proc.returncode or 0), out.decode(), err.decode())
