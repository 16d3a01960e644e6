"""Per-pod balancing: a backend URL's host stands for every address it resolves to.

Three real uvicorn processes ("pods", ``tests/gateway/pod.py``) listen on 127.0.0.1, .2 and .3
with one port (Linux loopback answers on all of 127.0.0.0/8), and one name, ``pods.test``,
resolves to them through the gateway's hosts file (``resolve_hosts_file``), as a headless
Service's name resolves to its pods. tests/gateway/test_resolve.py checks the pieces in
process.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.conftest import AUTH
from tests.support.services import (
    Backends,
    LiveService,
    free_port,
    spawn,
    start_gateway,
    start_gateway_alive,
    wait_until_ok,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "pods.test"


@dataclass
class Pod:
    name: str
    host: str
    port: int
    process: LiveService

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def calls(self) -> int:
        return int(httpx.get(f"{self.url}/calls", timeout=5).json()["calls"])


def start_pod(
    tmp: Path,
    name: str,
    host: str,
    port: int,
    mode: str = "ok",
    tls: tuple[Path, Path] | None = None,
) -> Pod:
    """A pod process; ``tls``: (key, certificate) files to serve HTTPS with."""
    command = [sys.executable, "-m", "uvicorn", "tests.gateway.pod:app"]
    command += ["--host", host, "--port", str(port), "--lifespan", "off", "--no-access-log"]
    if tls is not None:
        command += ["--ssl-keyfile", str(tls[0]), "--ssl-certfile", str(tls[1])]
    env = {**os.environ, "POD_NAME": name, "POD_MODE": mode}
    process = spawn(f"pod-{name}", command, port, tmp / f"pod-{name}.log", env)
    pod = Pod(name, host, port, process)
    try:
        if tls is None:
            wait_until_ok(f"{pod.url}/readyz", 30, alive=lambda: process.proc.poll() is None)
        else:
            wait_for(lambda: _listens(host, port) or process.proc.poll() is not None, 30)
            if process.proc.poll() is not None:
                raise RuntimeError(f"pod {name} stopped")
    except (RuntimeError, TimeoutError, AssertionError) as exc:
        process.stop()
        raise RuntimeError(f"{exc}\n{process.logs()[-2000:]}") from None
    return pod


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pod, Pod, Pod]]:
    """Pods a and b answer; pod c passes its readiness probe but answers every call 503."""
    tmp = tmp_path_factory.mktemp("pods")
    port = free_port()
    started: list[Pod] = []
    try:
        for name, host, mode in (("a", "127.0.0.1", "ok"), ("b", "127.0.0.2", "ok")):
            started.append(start_pod(tmp, name, host, port, mode))
        started.append(start_pod(tmp, "c", "127.0.0.3", port, "503"))
        yield started[0], started[1], started[2]
    finally:
        for pod in started:
            pod.process.stop(grace_s=5)


def _listens(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def write_hosts(path: Path, pods: list[Pod], name: str = NAME) -> Path:
    """The hosts file: ``name`` resolves to ``pods``' addresses (replaced whole, as a
    ConfigMap update does)."""
    part = path.with_suffix(".part")
    part.write_text("# test pods\n" + "".join(f"{p.host} {name}\n" for p in pods))
    part.replace(path)
    return path


@contextmanager
def pods_gateway(
    tmp: Path,
    pods: list[Pod],
    scheme: str = "http",
    ready: bool = True,
    extra: dict[str, str] | None = None,
) -> Iterator[tuple[LiveService, Path]]:
    """A gateway whose two upstreams are ``<scheme>://pods.test:<port>`` (the pods' port),
    the name resolving to ``pods`` in a hosts file, with upstream settings ``extra``; (the
    gateway, the hosts file), waited for until ready (else alive) and stopped on the way out."""
    hosts = write_hosts(tmp / "hosts", pods)
    url = f"{scheme}://{NAME}:{pods[0].port}"
    env = {"DOCSUM_GATEWAY_PROBE_INTERVAL_S": "0.2"}
    for upstream in ("OCR", "SUMMARIZER"):
        env[f"DOCSUM_GATEWAY_{upstream}__RESOLVE_HOSTS_FILE"] = str(hosts)
        env.update({f"DOCSUM_GATEWAY_{upstream}__{k.upper()}": v for k, v in (extra or {}).items()})
    backends: Backends = {"ocr": [{"url": url}], "summarizer": [{"url": url}]}
    gw = (start_gateway if ready else start_gateway_alive)(tmp, backends, env)
    try:
        yield gw, hosts
    finally:
        gw.stop()


def metric(gw: LiveService, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every series of gauge or counter ``name`` of ``gw``: labels → value."""
    text = httpx.get(f"{gw.url}/metrics", timeout=10).text
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def summarizer_series(gw: LiveService, name: str, key: str) -> dict[str, float]:
    """``name``'s summarizer series by the value of label ``key``."""
    return {
        dict(labels)[key]: value
        for labels, value in metric(gw, name).items()
        if dict(labels).get("upstream") == "summarizer"
    }


def wait_for(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s")
        time.sleep(0.1)


def served_by(gw: LiveService, n: int) -> Counter[str]:
    """Which pods answered ``n`` calls, one after the other (each must succeed)."""
    served: Counter[str] = Counter()
    with httpx.Client(headers=AUTH, timeout=30) as client:
        for _ in range(n):
            r = client.post(f"{gw.url}/api/v1/summarize", json={"text": "x"})
            assert r.status_code == 200, r.text
            served[r.json()["pod"]] += 1
    return served


async def _concurrent(gw: LiveService, n: int) -> list[httpx.Response]:
    """``n`` calls at once."""
    async with httpx.AsyncClient(headers=AUTH, timeout=30) as client:
        url = f"{gw.url}/api/v1/summarize"
        return list(await asyncio.gather(*(client.post(url, json={"text": "x"}) for _ in range(n))))


def test_calls_spread_over_healthy_pods_and_only_the_failing_pods_circuit_opens(
    pods: tuple[Pod, Pod, Pod], tmp_path: Path
) -> None:
    a, b, c = pods
    settings = {"breaker_failures": "3", "breaker_open_s": "600", "retries": "2"}
    with pods_gateway(tmp_path, [a, b, c], extra=settings) as (gw, _):
        served = served_by(gw, 60)
        responses = asyncio.run(_concurrent(gw, 30))
        assert [r.status_code for r in responses] == [200] * 30
        served.update(r.json()["pod"] for r in responses)
        assert {r.json()["host"] for r in responses} == {f"{NAME}:{a.port}"}  # the name, not IP
        # Both healthy pods share the calls; every call that met c was retried on another pod.
        assert set(served) == {"a", "b"} and min(served.values()) >= 20, served
        # c failed breaker_failures times in a row: its own circuit opened, and held.
        assert c.calls() == 3
        assert a.calls() + b.calls() == 90
        circuits = summarizer_series(gw, "docsum_upstream_endpoint_circuit_open", "endpoint")
        assert circuits == {a.endpoint: 0.0, b.endpoint: 0.0, c.endpoint: 1.0}
        endpoints = summarizer_series(gw, "docsum_upstream_endpoints", "circuit")
        assert endpoints == {"closed": 2.0, "open": 1.0}
        retries = summarizer_series(gw, "docsum_upstream_retries_total", "version")
        assert retries == {"stable": 3.0}
        # The version stays in service: one pod's circuit no longer takes it out.
        assert httpx.get(f"{gw.url}/readyz", timeout=5).status_code == 200


def test_resolution_again_picks_up_a_pod_added_and_drops_one_removed(
    pods: tuple[Pod, Pod, Pod], tmp_path: Path
) -> None:
    a, b, _ = pods
    with pods_gateway(tmp_path, [a], extra={"resolve_interval_s": "0.2"}) as (gw, hosts):
        assert set(served_by(gw, 10)) == {"a"}
        write_hosts(hosts, [a, b])  # b scaled up
        wait_for(lambda: set(served_by(gw, 10)) == {"a", "b"})
        endpoints = summarizer_series(gw, "docsum_upstream_endpoint_circuit_open", "endpoint")
        assert set(endpoints) == {a.endpoint, b.endpoint}
        write_hosts(hosts, [b])  # a scaled down
        wait_for(lambda: set(served_by(gw, 10)) == {"b"})
        assert set(served_by(gw, 20)) == {"b"}
        # a's series went with it: the label's values are the pods there are now.
        endpoints = summarizer_series(gw, "docsum_upstream_endpoint_circuit_open", "endpoint")
        assert endpoints == {b.endpoint: 0.0}
        assert summarizer_series(gw, "docsum_upstream_endpoints", "circuit") == {
            "closed": 1.0,
            "open": 0.0,
        }
        # The name leaves the hosts file and no DNS knows it: the last good answer is kept.
        write_hosts(hosts, [a, b], name="elsewhere.test")
        errors = "docsum_upstream_resolve_errors_total"
        wait_for(lambda: summarizer_series(gw, errors, "upstream").get("summarizer", 0) >= 2)
        assert set(served_by(gw, 10)) == {"b"}
        assert "backend host not resolved; keeping its last addresses" in gw.logs()


def test_a_connection_error_resolves_again_at_once(
    pods: tuple[Pod, Pod, Pod], tmp_path: Path
) -> None:
    a = pods[0]
    gone = Pod("gone", "127.0.0.4", a.port, a.process)  # nothing listens there
    settings = {"resolve_interval_s": "3600", "breaker_failures": "100"}
    with pods_gateway(tmp_path, [gone], ready=False, extra=settings) as (gw, hosts):
        # A probe round has run (so has the first resolution before it): 127.0.0.4 refused.
        wait_for(lambda: "no backend ready" in httpx.get(f"{gw.url}/readyz").text + gw.logs())
        write_hosts(hosts, [a])  # the pod moved; the periodic resolution is an hour away
        r = httpx.post(f"{gw.url}/api/v1/summarize", json={"text": "x"}, headers=AUTH)
        assert r.status_code == 503 and "cannot reach" in r.json()["error"]["message"]
        # That refusal asked for the name again, in the background: the next calls reach a.
        call = f"{gw.url}/api/v1/summarize"
        wait_for(lambda: httpx.post(call, json={"text": "x"}, headers=AUTH).status_code == 200, 5)
        assert set(served_by(gw, 5)) == {"a"}


def test_an_https_pod_is_reached_by_address_under_the_hosts_name(tmp_path: Path) -> None:
    """The certificate names pods.test only: the call verifies only if the gateway, connected
    to 127.0.0.2, still asks TLS for pods.test (and sends it as Host)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", f"/CN={NAME}"]
    command += ["-addext", f"subjectAltName=DNS:{NAME}"]  # the name only, no IP
    subprocess.run(command, check=True, capture_output=True)
    pod = start_pod(tmp_path, "tls", "127.0.0.2", free_port(), tls=(key, cert))
    try:
        with pods_gateway(tmp_path, [pod], "https", extra={"tls_ca_file": str(cert)}) as (gw, _):
            r = httpx.post(f"{gw.url}/api/v1/summarize", json={"text": "x"}, headers=AUTH)
            assert r.status_code == 200, r.text
            assert r.json() == {"pod": "tls", "host": f"{NAME}:{pod.port}"}
            circuits = summarizer_series(gw, "docsum_upstream_endpoint_circuit_open", "endpoint")
            assert circuits == {pod.endpoint: 0.0}
    finally:
        pod.process.stop(grace_s=5)
