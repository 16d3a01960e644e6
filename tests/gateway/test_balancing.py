"""Per-pod balancing: a backend URL's host stands for every address it resolves to.

Three real uvicorn processes ("pods", ``tests/gateway/pod.py``) listen on 127.0.0.1, .2 and .3
with one port (Linux loopback answers on all of 127.0.0.0/8), and one name, ``pods.test``,
resolves to them through the gateway's hosts file (``resolve_hosts_file``), as a headless
Service's name resolves to its pods. The unit tests below them check the pieces: the hosts
format, the address family, the last good answer, endpoints carried over by address.
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
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from docsum.gateway import resolve
from docsum.gateway.backends import BackendSpec
from docsum.gateway.breaker import CircuitBreaker, State
from docsum.gateway.resolve import AddressBook, ResolveError, Resolver, one_family, parse_hosts
from docsum.gateway.routing import Backend, Routes
from tests.gateway.conftest import AUTH
from tests.support.services import (
    LiveService,
    free_port,
    spawn,
    start_gateway,
    start_gateway_alive,
    wait_until_ok,
)

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


def start_pods_gateway(
    tmp: Path, hosts: Path, port: int, scheme: str = "http", ready: bool = True, **extra: str
) -> LiveService:
    """A gateway whose two upstreams are ``<scheme>://pods.test:<port>``, waited for until
    ready (else alive)."""
    url = f"{scheme}://{NAME}:{port}"
    env = {"DOCSUM_GATEWAY_PROBE_INTERVAL_S": "0.2"}
    for upstream in ("OCR", "SUMMARIZER"):
        env[f"DOCSUM_GATEWAY_{upstream}__RESOLVE_HOSTS_FILE"] = str(hosts)
        env.update({f"DOCSUM_GATEWAY_{upstream}__{k.upper()}": v for k, v in extra.items()})
    backends = {"ocr": [{"url": url}], "summarizer": [{"url": url}]}
    start = start_gateway if ready else start_gateway_alive
    return start(tmp, backends, env)  # type: ignore[arg-type]


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


@pytest.mark.integration
@pytest.mark.slow
def test_calls_spread_over_healthy_pods_and_only_the_failing_pods_circuit_opens(
    pods: tuple[Pod, Pod, Pod], tmp_path: Path
) -> None:
    a, b, c = pods
    hosts = write_hosts(tmp_path / "hosts", [a, b, c])
    gw = start_pods_gateway(
        tmp_path, hosts, a.port, breaker_failures="3", breaker_open_s="600", retries="2"
    )
    try:
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
    finally:
        gw.stop()


@pytest.mark.integration
@pytest.mark.slow
def test_resolution_again_picks_up_a_pod_added_and_drops_one_removed(
    pods: tuple[Pod, Pod, Pod], tmp_path: Path
) -> None:
    a, b, _ = pods
    hosts = write_hosts(tmp_path / "hosts", [a])
    gw = start_pods_gateway(tmp_path, hosts, a.port, resolve_interval_s="0.2")
    try:
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
    finally:
        gw.stop()


@pytest.mark.integration
@pytest.mark.slow
def test_a_connection_error_resolves_again_at_once(
    pods: tuple[Pod, Pod, Pod], tmp_path: Path
) -> None:
    a = pods[0]
    gone = Pod("gone", "127.0.0.4", a.port, a.process)  # nothing listens there
    hosts = write_hosts(tmp_path / "hosts", [gone])
    gw = start_pods_gateway(
        tmp_path, hosts, a.port, ready=False, resolve_interval_s="3600", breaker_failures="100"
    )
    try:
        # A probe round has run (so has the first resolution before it): 127.0.0.4 refused.
        wait_for(lambda: "no backend ready" in httpx.get(f"{gw.url}/readyz").text + gw.logs())
        write_hosts(hosts, [a])  # the pod moved; the periodic resolution is an hour away
        r = httpx.post(f"{gw.url}/api/v1/summarize", json={"text": "x"}, headers=AUTH)
        assert r.status_code == 503 and "cannot reach" in r.json()["error"]["message"]
        # That refusal asked for the name again, in the background: the next calls reach a.
        call = f"{gw.url}/api/v1/summarize"
        wait_for(lambda: httpx.post(call, json={"text": "x"}, headers=AUTH).status_code == 200, 5)
        assert set(served_by(gw, 5)) == {"a"}
    finally:
        gw.stop()


@pytest.mark.integration
@pytest.mark.slow
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
        hosts = write_hosts(tmp_path / "hosts", [pod])
        gw = start_pods_gateway(tmp_path, hosts, pod.port, "https", tls_ca_file=str(cert))
        try:
            r = httpx.post(f"{gw.url}/api/v1/summarize", json={"text": "x"}, headers=AUTH)
            assert r.status_code == 200, r.text
            assert r.json() == {"pod": "tls", "host": f"{NAME}:{pod.port}"}
            circuits = summarizer_series(gw, "docsum_upstream_endpoint_circuit_open", "endpoint")
            assert circuits == {pod.endpoint: 0.0}
        finally:
            gw.stop()
    finally:
        pod.process.stop(grace_s=5)


# --- the pieces, in process -------------------------------------------------------------------


def test_hosts_format_gives_every_address_of_a_name_in_one_family() -> None:
    text = (
        "# pinned pods\n"
        "10.0.0.2 ocr.docsum ocr   # alias too\n"
        "10.0.0.1 OCR.docsum\n"
        "fd00::1 ocr.docsum\n"
        "fd00::2 summarizer.docsum\n"
        "not-an-ip broken.docsum\n"
        "10.0.0.9\n"
    )
    hosts = parse_hosts(text)
    assert hosts == {
        "ocr.docsum": ("10.0.0.1", "10.0.0.2"),  # IPv4 first: a dual-stack pod counts once
        "ocr": ("10.0.0.2",),
        "summarizer.docsum": ("fd00::2",),
    }
    assert one_family(["10.0.0.1", "10.0.0.1"]) == ("10.0.0.1",)


async def test_resolver_order_literal_then_hosts_file_then_the_system_resolver(
    tmp_path: Path,
) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.7 pinned.test\n")
    resolver = Resolver(hosts, timeout_s=5)
    assert await resolver.resolve("10.1.2.3") == ("10.1.2.3",)
    assert await resolver.resolve("::1") == ("::1",)
    assert await resolver.resolve("PINNED.test") == ("127.0.0.7",)
    # Not in the file: getaddrinfo, as every program resolves (localhost is in /etc/hosts).
    assert await resolver.resolve("localhost") == ("127.0.0.1",)
    hosts.write_text("127.0.0.8 pinned.test\n127.0.0.9 pinned.test\n")
    assert await resolver.resolve("pinned.test") == ("127.0.0.8", "127.0.0.9")
    hosts.unlink()
    with pytest.raises(ResolveError, match="cannot be read"):
        await resolver.resolve("pinned.test")
    with pytest.raises(ResolveError, match=r"no-such-host\.invalid"):
        await Resolver(None, timeout_s=5).resolve("no-such-host.invalid")


async def test_a_late_answer_is_a_resolve_error_and_the_lookup_is_not_started_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[str] = []

    async def hangs(host: str) -> list[str]:  # a DNS server that does not answer
        started.append(host)
        await asyncio.sleep(3600)
        return []

    monkeypatch.setattr(resolve, "_getaddrinfo", hangs)
    resolver = Resolver(None, timeout_s=0.05)
    for _ in range(2):
        with pytest.raises(ResolveError, match=r"no answer within 0\.05 s"):
            await resolver.resolve("slow.invalid")
    assert started == ["slow.invalid"]  # the second call waited on the first lookup


async def test_address_book_keeps_the_last_good_answer_and_counts_failures(
    tmp_path: Path,
) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.7 pods.invalid\n")
    book = AddressBook("book-test", Resolver(hosts, timeout_s=5))

    def errors() -> float:
        labels = {"upstream": "book-test"}
        return REGISTRY.get_sample_value("docsum_upstream_resolve_errors_total", labels) or 0

    assert await book.refresh(["pods.invalid"]) is True
    assert await book.refresh(["pods.invalid"]) is False  # same answer: nothing to swap
    hosts.write_text("127.0.0.1 other.invalid\n")  # gone from the file; DNS has no such name
    assert await book.refresh(["pods.invalid"]) is False
    assert book.lookup("pods.invalid") == ("127.0.0.7",) and errors() == 1
    assert book.lookup("never-resolved.invalid") is None  # → connected to by name


def _spec(url: str, version: str = "stable", weight: float = 100) -> BackendSpec:
    return BackendSpec(url=url, version=version, weight=weight)


def test_endpoints_carry_over_by_address_with_their_circuits() -> None:
    def breaker() -> CircuitBreaker:
        return CircuitBreaker(1, 60.0)

    specs = [_spec("http://ocr.docsum:8081/base"), _spec("http://canary.docsum:8081", "canary", 10)]
    addresses = {"ocr.docsum": ("10.0.0.1", "10.0.0.2")}
    first = Routes.from_specs(specs, Routes(), breaker, addresses.get)
    stable = first.versions["stable"]
    assert [b.endpoint for b in stable] == ["10.0.0.1:8081", "10.0.0.2:8081"]
    assert stable[0].address == ("10.0.0.1", 8081, "/base")
    assert stable[0].authority == "ocr.docsum:8081"  # the Host header keeps the name
    [canary] = first.versions["canary"]  # not resolved yet: the name itself, one endpoint
    assert canary.ip is None and canary.address == ("canary.docsum", 8081, "")
    assert first.weights == {"stable": 100, "canary": 10}
    stable[1].breaker.failure()
    # A pod joins and one leaves: the one that stays keeps its circuit (open here).
    addresses["ocr.docsum"] = ("10.0.0.2", "10.0.0.3")
    second = Routes.from_specs(specs, first, breaker, addresses.get)
    kept, joined = second.versions["stable"]
    assert kept is stable[1] and kept.breaker.state is State.OPEN
    assert joined.ip == "10.0.0.3" and joined.breaker.state is State.CLOSED


def test_an_https_endpoint_connects_to_its_address_and_names_the_host() -> None:
    backend = Backend("https://ocr.example:8443", "stable", CircuitBreaker(1, 1.0), ip="fd00::5")
    assert backend.address is None  # the httpx pool, with TLS
    assert backend.target == "https://[fd00::5]:8443"
    assert backend.hostname == "ocr.example" and backend.authority == "ocr.example:8443"
    assert backend.endpoint == "[fd00::5]:8443"
