"""The addresses behind each backend URL's host: one endpoint per pod.

A Kubernetes headless Service's name (``clusterIP: None``) resolves to one address per ready
pod; a ClusterIP Service's to its one virtual IP; an IP literal is itself. The gateway
balances, retries and breaks per address (``routing.py``), so it needs them all, kept fresh:

- a name listed in ``resolve_hosts_file`` (the ``/etc/hosts`` format) resolves to every
  address listed for it, the file read again when it changes (tests, endpoints pinned in ops);
- any other name through the system resolver, ``loop.getaddrinfo`` (a thread): it returns
  every A/AAAA record and follows resolv.conf's search domains and ``ndots``, /etc/hosts and
  nsswitch as every other program in the pod does. It gives no TTLs; the gateway asks again
  every ``resolve_interval_s`` instead (5 s by default: the TTL CoreDNS gives cluster
  records), which is why dnspython would not earn its place as a dependency;
- one address family per name: IPv4 if it has any IPv4 address, else IPv6 (a dual-stack pod
  has one of each, and would count twice).

A failed, late or empty answer raises :class:`ResolveError`; :class:`AddressBook` keeps the
last good answer of each host then, so a DNS outage does not empty an upstream.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from . import metrics
from .watch import Stamp, stamp

log = logging.getLogger(__name__)

Addresses = tuple[str, ...]


class ResolveError(Exception):
    """A host's addresses could not be had now; the message says why."""


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def one_family(addresses: Iterable[str]) -> Addresses:
    """The IPv4 addresses if there is any, else the IPv6 ones; unique and sorted."""
    ips = {ipaddress.ip_address(a) for a in addresses}
    v4 = sorted(ip for ip in ips if isinstance(ip, ipaddress.IPv4Address))
    v6 = sorted(ip for ip in ips if isinstance(ip, ipaddress.IPv6Address))
    return tuple(str(ip) for ip in (v4 or v6))


def parse_hosts(text: str) -> dict[str, Addresses]:
    """Name (lower case) → its addresses, from ``<address> <name> [<name>...]`` lines
    (``#`` comments); a name on several lines gets every address. Malformed lines are skipped,
    as the C library does with /etc/hosts."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or not is_ip(fields[0]):
            continue
        for name in fields[1:]:
            found.setdefault(name.lower(), []).append(fields[0])
    return {name: one_family(addresses) for name, addresses in found.items()}


class Resolver:
    """A host's addresses: an IP literal, the hosts file, else the system resolver."""

    def __init__(self, hosts_file: Path | None, timeout_s: float) -> None:
        self.hosts_file = hosts_file
        self.timeout_s = timeout_s
        self._hosts: dict[str, Addresses] = {}
        self._stamp: Stamp = None
        #: Lookups still running in their thread: a late one is joined, not started again.
        self._pending: dict[str, asyncio.Future[list[str]]] = {}

    def without_dns(self, host: str) -> Addresses | None:
        """The addresses known without asking DNS (None: DNS must be asked).

        Raises :class:`ResolveError` when the hosts file is set but cannot be read.
        """
        if is_ip(host):
            return (host,)
        if self.hosts_file is None:
            return None
        now = stamp(self.hosts_file)
        if now is None:
            raise ResolveError(f"hosts file {self.hosts_file} cannot be read")
        if now != self._stamp:
            try:
                text = self.hosts_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ResolveError(f"hosts file {self.hosts_file}: {exc}") from None
            self._hosts, self._stamp = parse_hosts(text), now
        return self._hosts.get(host.lower())

    def _lookup_ended(self, host: str, lookup: asyncio.Future[list[str]]) -> None:
        self._pending.pop(host, None)
        if not lookup.cancelled():
            lookup.exception()  # retrieved: a lookup that came too late is not an error to log

    async def resolve(self, host: str) -> Addresses:
        """Every address of ``host`` now (one family); :class:`ResolveError` if none came
        within ``timeout_s``."""
        known = self.without_dns(host)
        if known is not None:
            return known
        lookup = self._pending.get(host)
        if lookup is None:
            lookup = asyncio.ensure_future(_getaddrinfo(host))
            self._pending[host] = lookup
            lookup.add_done_callback(lambda done: self._lookup_ended(host, done))
        try:
            async with asyncio.timeout(self.timeout_s):
                answer = await asyncio.shield(lookup)
        except TimeoutError:
            raise ResolveError(f"{host}: no answer within {self.timeout_s:g} s") from None
        except OSError as exc:  # socket.gaierror
            raise ResolveError(f"{host}: {exc.strerror or exc}") from None
        addresses = one_family(answer)
        if not addresses:
            raise ResolveError(f"{host}: no address")
        return addresses


async def _getaddrinfo(host: str) -> list[str]:
    """Every address of ``host`` the system resolver gives (in a thread)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


class AddressBook:
    """The last good addresses of each backend host of one upstream."""

    def __init__(
        self,
        upstream: str,
        resolver: Resolver,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstream = upstream
        self.resolver = resolver
        self._clock = clock
        self._known: dict[str, Addresses] = {}
        self._errors: dict[str, str] = {}
        #: When the last refresh began (monotonic seconds); None before the first.
        self.refreshed_at: float | None = None
        self._lock = asyncio.Lock()

    def lookup(self, host: str) -> Addresses | None:
        """The addresses to use for ``host`` now, without waiting; None: none known yet (the
        host is then connected to by name)."""
        try:
            now = self.resolver.without_dns(host)
        except ResolveError:
            now = None
        return now if now is not None else self._known.get(host)

    async def refresh(self, hosts: Iterable[str]) -> bool:
        """Resolve ``hosts`` again, all at once; whether any host's addresses changed. A host
        whose resolution fails keeps its last good addresses (the failure is logged once and
        counted each time)."""
        async with self._lock:
            self.refreshed_at = self._clock()
            hosts = sorted(set(hosts))
            answers = await asyncio.gather(
                *(self.resolver.resolve(h) for h in hosts), return_exceptions=True
            )
            changed = False
            for host, answer in zip(hosts, answers, strict=True):
                if isinstance(answer, ResolveError):
                    self._failed(host, str(answer))
                elif isinstance(answer, BaseException):
                    raise answer
                else:
                    if host in self._errors:
                        del self._errors[host]
                        log.info("backend host resolves again", extra=self._extra(host))
                    if self._known.get(host) != answer:
                        self._known[host] = answer
                        changed = True
            for host in set(self._known) - set(hosts):  # no longer a backend's host
                del self._known[host]
            return changed

    def _failed(self, host: str, error: str) -> None:
        metrics.UPSTREAM_RESOLVE_ERRORS.labels(self.upstream).inc()
        if self._errors.get(host) != error:
            self._errors[host] = error
            kept = self._known.get(host)
            log.warning(
                "backend host not resolved; keeping its last addresses"
                if kept
                else "backend host not resolved; connecting to it by name",
                extra={**self._extra(host), "error": error, "addresses": list(kept or ())},
            )

    def _extra(self, host: str) -> dict[str, str]:
        return {"upstream": self.upstream, "host": host}
