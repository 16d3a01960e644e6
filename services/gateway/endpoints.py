"""An upstream's endpoints: its backend URLs' hosts resolved into addresses, kept fresh.

The routing table (``routing.py``) has one endpoint per address of each URL's host
(``resolve.py``: one per pod behind a headless Service). Here that table is rebuilt whenever
the backends file or an address changes; the hosts are resolved again every
``resolve_interval_s`` once :meth:`Endpoints.start` ran (the upstream's first readiness
probe), and at once, in the background, after a connection error; the circuit gauges follow
the endpoints, a departed pod's series removed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from . import metrics
from .backends import BackendSpec
from .breaker import State
from .resolve import AddressBook, Addresses, Resolver
from .routing import Router
from .settings import UpstreamSettings

log = logging.getLogger(__name__)

#: Least seconds between two resolutions asked for by connection errors (a burst of errors
#: from one departed pod asks DNS once).
MIN_REFRESH_GAP_S = 1.0


def _by_name(host: str) -> Addresses | None:
    return None


class Endpoints:
    """Which endpoints an upstream's routing table holds, and their gauges."""

    def __init__(self, upstream: str, settings: UpstreamSettings, router: Router) -> None:
        self.upstream = upstream
        self.router = router
        self.interval_s = settings.resolve_interval_s  # 0: no resolution
        self.addresses = AddressBook(
            upstream, Resolver(settings.resolve_hosts_file, settings.resolve_timeout_s)
        )
        self._specs: list[BackendSpec] = []
        self._resolving: asyncio.Task[None] | None = None  # the periodic resolution
        self._refreshing: asyncio.Task[None] | None = None  # one asked for by an error
        self._series: set[tuple[str, str]] = set()  # (version, endpoint) with a gauge series

    def apply(self, specs: list[BackendSpec]) -> None:
        """Use these backends from now on; a host without a known address yet is resolved in
        the background (and connected to by name meanwhile)."""
        self._specs = list(specs)
        self._rebuild()
        if self.interval_s and any(self.addresses.lookup(s.host) is None for s in specs):
            self.refresh_soon()

    async def start(self) -> None:
        """Resolve the hosts now and then every ``resolve_interval_s`` (once; later calls
        return at once)."""
        if self.interval_s and self._resolving is None:
            await self.refresh()
            self._resolving = asyncio.create_task(
                self._keep_resolved(), name=f"resolve-{self.upstream}"
            )

    async def refresh(self) -> None:
        """Resolve every backend host again; a changed address swaps in a new table. Never
        raises: what goes wrong is logged, and the endpoints in use stay."""
        try:
            if await self.addresses.refresh(s.host for s in self._specs):
                self._rebuild()
        except Exception:  # a bug here must not stop the probes or the resolution loop
            log.exception("resolving the backend hosts failed", extra={"upstream": self.upstream})

    def refresh_soon(self) -> None:
        """Resolve again in the background now (a connection error may mean a pod left)."""
        if not self.interval_s or (self._refreshing is not None and not self._refreshing.done()):
            return
        last = self.addresses.refreshed_at
        if last is not None and time.monotonic() - last < MIN_REFRESH_GAP_S:
            return
        try:
            self._refreshing = asyncio.get_running_loop().create_task(self.refresh())
        except RuntimeError:  # no event loop yet: start() resolves
            return

    async def _keep_resolved(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.refresh()

    def _rebuild(self) -> None:
        """The routing table for the current backends and addresses; the gauges follow it."""
        lookup = self.addresses.lookup if self.interval_s else _by_name
        routes = self.router.routes
        before = {v: {b.endpoint for b in g} for v, g in routes.versions.items()}
        self.router.apply(self._specs, lookup)
        routes = self.router.routes
        after = {v: {b.endpoint for b in g} for v, g in routes.versions.items()}
        if after != before:
            log.info(
                "endpoints in use",
                extra={
                    "upstream": self.upstream,
                    "endpoints": {v: sorted(e) for v, e in after.items()},
                    "added": sorted(e for v in after for e in after[v] - before.get(v, set())),
                    "removed": sorted(e for v in before for e in before[v] - after.get(v, set())),
                },
            )
        series = {(b.version, b.endpoint) for b in routes.backends}
        for version, endpoint in self._series - series:  # its pod left
            with contextlib.suppress(KeyError):
                metrics.UPSTREAM_ENDPOINT_CIRCUIT_OPEN.remove(self.upstream, version, endpoint)
        self._series = series
        for version in set(before) - set(after):
            metrics.UPSTREAM_CIRCUIT_OPEN.labels(self.upstream, version).set(0)
            for circuit in ("closed", "open"):
                metrics.UPSTREAM_ENDPOINTS.labels(self.upstream, version, circuit).set(0)
        for version in after:
            self.publish(version)

    def publish(self, version: str) -> None:
        """The circuit gauges of ``version``: per endpoint, counts, and "any open"."""
        group = self.router.routes.versions.get(version, [])
        opened = 0
        for b in group:
            is_open = b.breaker.state is not State.CLOSED
            opened += is_open
            gauge = metrics.UPSTREAM_ENDPOINT_CIRCUIT_OPEN
            gauge.labels(self.upstream, version, b.endpoint).set(1 if is_open else 0)
        metrics.UPSTREAM_CIRCUIT_OPEN.labels(self.upstream, version).set(1 if opened else 0)
        metrics.UPSTREAM_ENDPOINTS.labels(self.upstream, version, "open").set(opened)
        metrics.UPSTREAM_ENDPOINTS.labels(self.upstream, version, "closed").set(len(group) - opened)

    async def aclose(self) -> None:
        """Stop resolving."""
        tasks = [t for t in (self._resolving, self._refreshing) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
