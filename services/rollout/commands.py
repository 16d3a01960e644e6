"""What ``docsum rollout`` does: status, canary weights, blue/green promote and abort.

Every command prints what it found and what it changed (or, with ``dry_run``, the patch it
would send) and returns the process exit code: 0 done, 1 refused by a gate (nothing
changed), 2 the cluster or Prometheus could not be used.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from .cluster import Cluster, ClusterError
from .gates import Prometheus, PrometheusError, gate, measure, slot_cohort, upstream_cohort
from .settings import RolloutSettings

OK, GATE_FAILED, UNUSABLE = 0, 1, 2

Backends = dict[str, list[dict[str, Any]]]


class RolloutError(ValueError):
    """A request that cannot be carried out as asked (unknown service, bad weight)."""


@dataclass
class Context:
    cluster: Cluster
    prometheus: Prometheus
    settings: RolloutSettings
    out: TextIO

    def say(self, line: str) -> None:
        self.out.write(line + "\n")


def version_weights(entries: list[dict[str, Any]]) -> dict[str, float]:
    """Traffic weight per version: the sum of its backends' weights."""
    weights: dict[str, float] = {}
    for e in entries:
        version = str(e.get("version", "stable"))
        weights[version] = weights.get(version, 0.0) + float(e.get("weight", 100))
    return weights


def canary_share(entries: list[dict[str, Any]]) -> float:
    """The canary's share of the upstream's traffic, in percent."""
    weights = version_weights(entries)
    total = sum(weights.values())
    return 100.0 * weights.get("canary", 0.0) / total if total else 0.0


def with_canary_weight(
    backends: Backends, upstream: str, weight: float, canary_url: str | None
) -> Backends:
    """``backends`` with ``upstream`` split stable (100 - weight) / canary (weight) percent.

    Each version's weight is spread evenly over its backends. A canary backend is added (at
    ``canary_url``, else ``http://docsum-<upstream>-canary:<stable port>``) if there is none;
    at weight 0 it stays, unused, so the next step knows where it is.
    """
    if not 0 <= weight <= 100:
        raise RolloutError(f"weight {weight:g} is not a percentage (0-100)")
    if upstream not in backends:
        raise RolloutError(f"no upstream {upstream!r} in the backends ({sorted(backends)})")
    entries = copy.deepcopy(backends[upstream])
    stable = [e for e in entries if e.get("version", "stable") == "stable"]
    canary = [e for e in entries if e.get("version") == "canary"]
    if not stable:
        raise RolloutError(f"{upstream} has no 'stable' backend to keep")
    if not canary:
        if weight == 0:
            return copy.deepcopy(backends)
        url = canary_url or _canary_url(str(stable[0]["url"]))
        canary = [{"url": url, "version": "canary", "weight": 0}]
        entries.append(canary[0])
    for group, share in ((stable, 100.0 - weight), (canary, weight)):
        for e in group:
            e["weight"] = _number(share / len(group))
    out = copy.deepcopy(backends)
    out[upstream] = entries
    return out


def _canary_url(stable_url: str) -> str:
    """The canary track's URL beside the stable one, as the chart names its Services:
    ``<svc>-pods`` → ``<svc>-canary-pods`` (headless), ``<svc>`` → ``<svc>-canary``."""
    url = urlsplit(stable_url)
    host = url.hostname or ""
    stem, headless = (host[: -len("-pods")], "-pods") if host.endswith("-pods") else (host, "")
    netloc = f"{stem}-canary{headless}" + (f":{url.port}" if url.port else "")
    return urlunsplit(url._replace(netloc=netloc))


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else round(x, 3)


# --- commands ------------------------------------------------------------------------------
def status(ctx: Context, *, metrics: bool = True) -> int:
    """Print each upstream's versions and weights, the gateway's slots, and the gate figures."""
    backends = ctx.cluster.backends()
    for upstream, entries in sorted(backends.items()):
        split = ", ".join(f"{v} {w:g}" for v, w in version_weights(entries).items())
        ctx.say(f"{upstream}: {split} (canary {canary_share(entries):.0f} %)")
        for e in entries:
            ctx.say(f"  {e.get('version', 'stable'):<8} weight {e.get('weight')!s:<6} {e['url']}")
        if metrics and "canary" in version_weights(entries):
            for version in ("canary", "stable"):
                figures = measure(
                    ctx.prometheus, upstream_cohort(upstream, version), ctx.settings.window
                )
                ctx.say(f"  {version} over {ctx.settings.window}: {figures.describe()}")
    try:
        live = ctx.cluster.slot(ctx.settings.gateway_service)
        preview = ctx.cluster.slot(ctx.settings.preview_service)
    except ClusterError:
        ctx.say("gateway: one Deployment (no blue/green slots)")
        return OK
    ctx.say(f"gateway: live slot {live}, preview slot {preview}")
    if metrics:
        for slot in (preview, live):
            figures = measure(ctx.prometheus, slot_cohort(slot), ctx.settings.window)
            ctx.say(f"  {slot} over {ctx.settings.window}: {figures.describe()}")
    return OK


def canary(
    ctx: Context,
    upstream: str,
    weight: float,
    *,
    dry_run: bool = False,
    force: bool = False,
    canary_url: str | None = None,
) -> int:
    """Set the canary's share of ``upstream``'s traffic to ``weight`` percent.

    Raising a share the canary already has is gated (it has served traffic to judge);
    the first step (from 0) and any decrease are not: they send no more traffic to it.
    """
    backends = ctx.cluster.backends()
    if upstream not in backends:
        raise RolloutError(f"no upstream {upstream!r} in the backends ({sorted(backends)})")
    current = canary_share(backends[upstream])
    if weight > current and current > 0 and not force:
        verdict = gate(
            ctx.prometheus,
            upstream_cohort(upstream, "canary"),
            upstream_cohort(upstream, "stable"),
            ctx.settings,
        )
        ctx.say(f"{upstream} canary {current:g} % → {weight:g} %: {verdict.describe()}")
        if not verdict.passed:
            ctx.say("nothing changed; fix the canary, wait for traffic, or `abort`")
            return GATE_FAILED
    updated = with_canary_weight(backends, upstream, weight, canary_url)
    patch = ctx.cluster.backends_patch(updated)
    if dry_run:
        ctx.say(f"dry run: would patch ConfigMap {ctx.settings.backends_configmap}:")
        ctx.say(json.dumps(patch, indent=2))
        return OK
    ctx.cluster.patch_backends(patch)
    ctx.say(f"{upstream}: canary {current:g} % → {weight:g} % (stable {100 - weight:g} %)")
    return OK


def promote(ctx: Context, *, dry_run: bool = False, force: bool = False) -> int:
    """Blue/green: make the preview slot live, once it is as good as the live one."""
    live = ctx.cluster.slot(ctx.settings.gateway_service)
    preview = ctx.cluster.slot(ctx.settings.preview_service)
    if live == preview:
        raise RolloutError(f"both gateway Services select slot {live}: nothing to promote")
    if not force:
        verdict = gate(ctx.prometheus, slot_cohort(preview), slot_cohort(live), ctx.settings)
        ctx.say(f"promote {preview} (live: {live}): {verdict.describe()}")
        if not verdict.passed:
            ctx.say("nothing changed; the live slot keeps serving")
            return GATE_FAILED
    return _switch(ctx, live=preview, preview=live, dry_run=dry_run)


def abort(ctx: Context, upstream: str | None = None, *, dry_run: bool = False) -> int:
    """Back out, never gated: a canary's share to 0, or the gateway to its previous slot."""
    if upstream is not None and upstream != "gateway":
        return canary(ctx, upstream, 0, dry_run=dry_run, force=True)
    previous = ctx.cluster.previous_slot()
    live = ctx.cluster.slot(ctx.settings.gateway_service)
    if previous is None or previous == live:
        raise RolloutError(f"the gateway's live slot {live} has no earlier slot to go back to")
    return _switch(ctx, live=previous, preview=live, dry_run=dry_run)


def _switch(ctx: Context, *, live: str, preview: str, dry_run: bool) -> int:
    s = ctx.settings
    patches = {
        s.gateway_service: ctx.cluster.selector_patch(live, previous=preview),
        s.preview_service: ctx.cluster.selector_patch(preview),
    }
    if dry_run:
        for name, patch in patches.items():
            ctx.say(f"dry run: would patch Service {name}:")
            ctx.say(json.dumps(patch, indent=2))
        return OK
    # Live first: from this call on, new connections reach the new slot.
    for name, patch in patches.items():
        ctx.cluster.patch_service(name, patch)
    ctx.say(f"gateway: live slot {preview} → {live}; preview now {preview}")
    return OK


def run(command: str, settings: RolloutSettings, out: TextIO, err: TextIO, **kw: Any) -> int:
    """Run one command against the cluster, mapping failures to exit codes with a message."""
    from .cluster import load_client

    try:
        cluster = Cluster(load_client(settings), settings)
        ctx = Context(
            cluster,
            Prometheus(settings.prometheus_url, settings.prometheus_timeout_s),
            settings,
            out,
        )
        if command == "status":
            return status(ctx, metrics=kw.get("metrics", True))
        if command == "canary":
            return canary(
                ctx,
                kw["service"],
                kw["weight"],
                dry_run=kw.get("dry_run", False),
                force=kw.get("force", False),
                canary_url=kw.get("canary_url"),
            )
        if command == "promote":
            return promote(ctx, dry_run=kw.get("dry_run", False), force=kw.get("force", False))
        if command == "abort":
            return abort(ctx, kw.get("service"), dry_run=kw.get("dry_run", False))
        raise RolloutError(f"unknown command {command}")
    except (ClusterError, PrometheusError, RolloutError) as exc:
        err.write(f"docsum rollout {command}: {exc}\n")
        return UNUSABLE
