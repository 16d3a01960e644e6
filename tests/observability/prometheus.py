"""A real Prometheus server for tests: Debian's binary, the shipped config and rules."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.services import ROOT, LiveService, free_port, spawn

BIN = ROOT / ".tools" / "prometheus" / "bin"
CONFIG = ROOT / "monitoring" / "prometheus.yml"
#: The one rules file and the one copy of the dashboards: the chart's (see scripts/k8s_render.py).
RULES = ROOT / "helm" / "docsum" / "files" / "rules" / "docsum.rules.yml"
DASHBOARDS = ROOT / "helm" / "docsum" / "files" / "dashboards"


def ensure_prometheus() -> Path:
    """The folder with ``prometheus`` and ``promtool``, installed by the project's script."""
    if not (BIN / "promtool").exists() or not (BIN / "prometheus").exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "install_prometheus.sh")], check=True)
    return BIN


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ensure_prometheus() / "promtool"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@dataclass
class PrometheusServer:
    process: LiveService

    @property
    def url(self) -> str:
        return self.process.url

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the ``data`` of a success, else AssertionError with the error."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query: the result vector (scalars become one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def stop(self) -> None:
        self.process.stop(grace_s=15)


def start_prometheus(
    tmp: Path, targets: dict[str, str], interval_s: float = 1.0
) -> PrometheusServer:
    """Prometheus with monitoring/prometheus.yml, its docsum jobs pointed at ``targets``
    (job → host:port), scraping and evaluating the rules every ``interval_s``."""
    config = yaml.safe_load(CONFIG.read_text())
    interval = f"{interval_s:g}s"
    config["global"].update(
        scrape_interval=interval, evaluation_interval=interval, scrape_timeout=interval
    )
    config["rule_files"] = [str(RULES)]
    port = free_port()
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name == "prometheus":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
        elif name in targets:
            # the target moves; its labels (app_kubernetes_io_part_of) stay
            job["static_configs"] = [{**job["static_configs"][0], "targets": [targets[name]]}]
        else:
            continue
        jobs.append(job)
    config["scrape_configs"] = jobs
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    command = [
        str(ensure_prometheus() / "prometheus"),
        f"--config.file={path}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.path={tmp / 'data'}",
    ]
    process = spawn("prometheus", command, port, tmp / "prometheus.log")
    try:
        process.wait_until_ok("/-/ready", 60)
    except RuntimeError:
        process.stop()
        raise
    return PrometheusServer(process)
