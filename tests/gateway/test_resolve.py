"""Name resolution and per-address endpoints, in process: the hosts format, the address
family, the resolver's order and time limit, the last good answer, endpoints carried over by
address (tests/gateway/test_balancing.py runs them with real pods)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from docsum.gateway import resolve
from docsum.gateway.backends import BackendSpec
from docsum.gateway.breaker import CircuitBreaker, State
from docsum.gateway.resolve import AddressBook, ResolveError, Resolver, one_family, parse_hosts
from docsum.gateway.routing import Backend, Routes


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
