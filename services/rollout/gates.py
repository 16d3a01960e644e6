"""Prometheus gates: is the new version as good as the current one?

A :class:`Cohort` is one version's traffic as Prometheus sees it: a requests counter with a
status label, a latency histogram, and the label matchers that pick the version. The gate
compares the new cohort's error ratio and p99 latency with the current cohort's:

* the new version must have served at least ``min_requests`` calls in the window (else the
  gate cannot judge, and fails: send traffic, or wait);
* its error ratio may exceed the current one's by at most ``max_error_rate_increase``;
* its p99 may be at most ``max_p99_ratio`` times the current one's.

This is the chart's ``canaryGate``, which Argo's analyses and the DocsumCanaryWorseThanStable
alert apply too (a version below the minimum is not judged there either).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import httpx

from .settings import RolloutSettings

#: Routes that are not user traffic (probes, scrapes).
_NOT_TRAFFIC = 'route!~"/(livez|readyz|metrics)"'


@dataclass(frozen=True)
class Cohort:
    """One version's traffic: which series, and which statuses count as errors."""

    name: str
    requests: str
    duration: str
    matchers: str
    errors: str

    def counted(self, window: str) -> str:
        return f"sum(increase({self.requests}{{{self.matchers}}}[{window}]))"

    def error_ratio(self, window: str) -> str:
        err = f"sum(rate({self.requests}{{{self.matchers},status=~{self.errors!r}}}[{window}]))"
        return f"({err} or vector(0)) / sum(rate({self.requests}{{{self.matchers}}}[{window}]))"

    def p99(self, window: str) -> str:
        rate = f"rate({self.duration}_bucket{{{self.matchers}}}[{window}])"
        return f"histogram_quantile(0.99, sum by (le) ({rate}))"


def upstream_cohort(upstream: str, version: str) -> Cohort:
    """A backend version as the gateway sees it (canary weights): status = code or "error"."""
    return Cohort(
        name=f"{upstream}/{version}",
        requests="docsum_upstream_requests_total",
        duration="docsum_upstream_request_duration_seconds",
        matchers=f'upstream="{upstream}",version="{version}"',
        errors="5..|error",
    )


def slot_cohort(slot: str) -> Cohort:
    """A gateway slot (blue/green) as its own pods report it; the ServiceMonitor attaches the
    pod label docsum.io/slot as docsum_io_slot."""
    return Cohort(
        name=f"gateway/{slot}",
        requests="docsum_http_requests_total",
        duration="docsum_http_request_duration_seconds",
        matchers=f'job="gateway",docsum_io_slot="{slot}",{_NOT_TRAFFIC}',
        errors="5..",
    )


@dataclass
class Figures:
    """One cohort measured over the window."""

    requests: float | None
    error_ratio: float | None
    p99_s: float | None

    def describe(self) -> str:
        def fmt(v: float | None, spec: str, unit: str = "") -> str:
            return "n/a" if v is None else f"{v:{spec}}{unit}"

        return (
            f"{fmt(self.requests, '.0f')} calls, errors {fmt(self.error_ratio, '.2%')}, "
            f"p99 {fmt(self.p99_s, '.3f', ' s')}"
        )


@dataclass
class Verdict:
    """The gate's answer, with the figures it was based on."""

    passed: bool
    new: Figures
    current: Figures
    reasons: list[str] = field(default_factory=list)

    def describe(self) -> str:
        head = "pass" if self.passed else "FAIL: " + "; ".join(self.reasons)
        return f"gate {head} (new: {self.new.describe()}; current: {self.current.describe()})"


class PrometheusError(RuntimeError):
    """Prometheus could not be asked, or refused the query."""


class Prometheus:
    """The instant-query API of one Prometheus server."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def value(self, query: str) -> float | None:
        """The query's single value; None when it has no result or is NaN/Inf (no traffic)."""
        try:
            resp = httpx.get(
                f"{self.url}/api/v1/query", params={"query": query}, timeout=self.timeout_s
            )
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {exc}") from exc
        if resp.status_code != 200:
            raise PrometheusError(f"Prometheus answered {resp.status_code}: {resp.text[:300]}")
        result = resp.json()["data"]["result"]
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) or math.isinf(value) else value


def measure(prom: Prometheus, cohort: Cohort, window: str) -> Figures:
    return Figures(
        requests=prom.value(cohort.counted(window)),
        error_ratio=prom.value(cohort.error_ratio(window)),
        p99_s=prom.value(cohort.p99(window)),
    )


def judge(new: Figures, current: Figures, settings: RolloutSettings) -> Verdict:
    """Compare the new version with the current one (see the module docstring)."""
    reasons = []
    if (new.requests or 0.0) < settings.min_requests:
        reasons.append(
            f"the new version served {new.requests or 0:.0f} calls in {settings.window}, "
            f"fewer than the {settings.min_requests:.0f} needed to judge it"
        )
    else:
        base_err = current.error_ratio or 0.0
        if new.error_ratio is not None and new.error_ratio > (
            base_err + settings.max_error_rate_increase
        ):
            reasons.append(
                f"error ratio {new.error_ratio:.2%} > current {base_err:.2%} "
                f"+ {settings.max_error_rate_increase:.2%}"
            )
        if (
            new.p99_s is not None
            and current.p99_s is not None
            and new.p99_s > current.p99_s * settings.max_p99_ratio
        ):
            reasons.append(
                f"p99 {new.p99_s:.3f} s > {settings.max_p99_ratio:g} × "
                f"current {current.p99_s:.3f} s"
            )
    return Verdict(passed=not reasons, new=new, current=current, reasons=reasons)


def gate(prom: Prometheus, new: Cohort, current: Cohort, settings: RolloutSettings) -> Verdict:
    """Measure both cohorts over the window and judge the new one."""
    return judge(
        measure(prom, new, settings.window), measure(prom, current, settings.window), settings
    )
