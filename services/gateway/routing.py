"""Which backend serves a call: the routing table, the version, the endpoint.

A call's version is drawn by weight among the versions with an endpoint whose circuit lets
calls through (90/10 is a canary, 0/100 a blue/green flip), or is the one pinned by
``X-Docsum-Backend`` (one of weight 0 only by the keys allowed to: the gateway's guard checks).
A version's endpoints are the addresses its backend URLs resolve to (``resolve.py``: one per
pod behind a headless Service, one for a ClusterIP Service or an IP literal); its call goes to
the endpoint with the fewest requests in flight: round-robin would pile long OCR requests onto
one pod.

The table is replaced whole when the backends file changes or a host's addresses do. A request
keeps the :class:`Backend` it picked until it ends, and endpoints carry over by (url, version,
address), so in-flight counts and circuit states survive a reload or a pod joining.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from ..common.errors import BadRequest, UpstreamUnavailable
from .backends import BackendSpec
from .breaker import CircuitBreaker


@dataclass(eq=False)
class Backend:
    """One endpoint of a backend URL: its version, circuit, and what the gateway knows of it.

    ``ip`` is the address connected to (a pod's, a ClusterIP's); None before the URL's host
    first resolved, when the host itself is connected to by name. Requests carry the URL's
    host as their Host header (and TLS server name) either way.
    """

    url: str
    version: str
    breaker: CircuitBreaker
    outstanding: int = 0
    #: The last readiness probe: True/False, None before the first one.
    ready: bool | None = None
    probe_error: str = ""
    #: Readiness probes in a row that got no answer in time.
    late_probes: int = 0
    ip: str | None = None
    #: (address, port, base path), taken apart once for the plain-HTTP pool; None for https.
    address: tuple[str, int, str] | None = field(init=False, default=None)
    #: The URL's ``host[:port]``: the Host header.
    authority: str = field(init=False, default="")
    #: The URL's host: the TLS server name (https).
    hostname: str = field(init=False, default="")
    #: The base URL to send https requests to (the address in place of the host).
    target: str = field(init=False, default="")
    #: ``address:port`` (``host:port`` before resolution): the endpoint in logs and metrics.
    endpoint: str = field(init=False, default="")

    def __post_init__(self) -> None:
        url = httpx.URL(self.url)
        port = url.port or (443 if url.scheme == "https" else 80)
        connect = self.ip or url.host
        self.authority = url.netloc.decode("ascii")
        self.hostname = url.host
        self.target = str(url.copy_with(host=self.ip)) if self.ip else self.url
        self.endpoint = f"[{connect}]:{port}" if ":" in connect else f"{connect}:{port}"
        if url.scheme == "http":
            self.address = (connect, port, url.path.rstrip("/"))


@dataclass
class Routes:
    """An upstream's backends grouped by version, with each version's weight."""

    versions: dict[str, list[Backend]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_specs(
        cls,
        specs: list[BackendSpec],
        previous: Routes,
        new_breaker: Callable[[], CircuitBreaker],
        addresses: Callable[[str], Sequence[str] | None] = lambda host: None,
    ) -> Routes:
        """The table for ``specs``, one endpoint per address of each URL's host
        (``addresses(host)``; None: the host, by name); endpoints already in ``previous``
        are kept as they are."""
        known = {(b.url, b.version, b.ip): b for b in previous.backends}
        routes = cls()
        for spec in specs:
            group = routes.versions.setdefault(spec.version, [])
            for ip in addresses(spec.host) or (None,):
                backend = known.get((spec.url, spec.version, ip)) or Backend(
                    spec.url, spec.version, new_breaker(), ip=ip
                )
                group.append(backend)
            routes.weights[spec.version] = routes.weights.get(spec.version, 0.0) + spec.weight
        return routes

    @property
    def backends(self) -> list[Backend]:
        return [b for group in self.versions.values() for b in group]

    def takes_no_traffic(self, version: str) -> bool:
        """Whether ``version`` is listed with weight 0 (not yet, or no longer, in use)."""
        return version in self.weights and self.weights[version] <= 0

    def usable_versions(self) -> set[str]:
        """The versions with at least one backend whose circuit lets a call through."""
        return {
            v for v, group in self.versions.items() if any(b.breaker.available() for b in group)
        }


def choose_version(
    weights: Mapping[str, float], usable: set[str], rng: random.Random
) -> str | None:
    """A version drawn with probability ∝ weight among ``usable`` ones with weight > 0."""
    candidates = [(v, w) for v, w in weights.items() if w > 0 and v in usable]
    total = sum(w for _, w in candidates)
    if total <= 0:
        return None
    x = rng.random() * total
    for version, weight in candidates:
        x -= weight
        if x < 0:
            return version
    return candidates[-1][0]


def pick_backend(backends: list[Backend], tried: set[int], rng: random.Random) -> Backend | None:
    """The endpoint with the fewest requests in flight among those whose circuit lets calls
    through; ones not yet tried and not known unready come first; ties are broken at random."""
    usable = [b for b in backends if b.breaker.available()]
    if not usable:
        return None
    fresh = [b for b in usable if id(b) not in tried] or usable
    ready = [b for b in fresh if b.ready is not False] or fresh
    least = min(b.outstanding for b in ready)
    return rng.choice([b for b in ready if b.outstanding == least])


class Router:
    """One upstream's routing table, and the choice of a version and an endpoint per call."""

    def __init__(
        self, name: str, breaker_failures: int, breaker_open_s: float, rng: random.Random
    ) -> None:
        self.name = name
        self.routes = Routes()
        self._breaker_failures = breaker_failures
        self._breaker_open_s = breaker_open_s
        self._rng = rng

    def apply(
        self,
        specs: list[BackendSpec],
        addresses: Callable[[str], Sequence[str] | None] = lambda host: None,
    ) -> None:
        """Swap in a new table (see :meth:`Routes.from_specs`)."""
        self.routes = Routes.from_specs(  # one assignment: a request sees the old or the new
            specs,
            self.routes,
            lambda: CircuitBreaker(self._breaker_failures, self._breaker_open_s),
            addresses,
        )

    def version(self, routes: Routes, pin: str | None) -> str:
        """The pinned version (400 if ``routes`` has none such), else one drawn by weight
        (503 when every backend has its circuit open)."""
        if pin is not None:
            if pin not in routes.versions:
                known = ", ".join(sorted(routes.versions))
                raise BadRequest(
                    f"X-Docsum-Backend: {pin!r} is not a version of {self.name}; known: {known}",
                    upstream=self.name,
                )
            return pin
        version = choose_version(routes.weights, routes.usable_versions(), self._rng)
        if version is None:
            raise self.circuits_open("every backend")
        return version

    def replica(self, group: list[Backend], tried: set[int]) -> Backend | None:
        """The endpoint of ``group`` for the next attempt (see :func:`pick_backend`)."""
        return pick_backend(group, tried, self._rng)

    def circuits_open(self, which: str, **details: str) -> UpstreamUnavailable:
        """The 503 for a call that no backend may take now."""
        open_s = self._breaker_open_s
        return UpstreamUnavailable(
            f"{self.name}: {which} has its circuit open after repeated failures; "
            f"retry in {open_s:g} s",
            headers={"Retry-After": str(max(1, round(open_s)))},
            upstream=self.name,
            **details,
        )
