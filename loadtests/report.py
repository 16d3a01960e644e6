"""Judge a Locust run against ``loadtests/slo.toml``: per route p50/p95/p99, error ratio, verdict.

Reads the summary Locust writes at the end of a run (``--summary-json``, see
``loadtests/routes.py``). No Locust import: usable from tests and tools.
"""

from __future__ import annotations

import csv
import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

SLO_FILE = Path(__file__).resolve().parent / "slo.toml"
#: Failures logged without a request (open-loop arrivals never sent, or never finished).
_UNSENT = ("dropped:", "unfinished ")
PERCENTILES = (0.50, 0.95, 0.99)


@dataclass(frozen=True)
class RouteSLO:
    route: str
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_error_ratio: float
    min_requests: int


def load_slos(path: Path = SLO_FILE) -> dict[str, RouteSLO]:
    """Statistics entry → its objectives, defaults filled in: the ``[routes]`` (HTTP routes)
    and the ``[jobs]`` (async jobs end to end) of ``slo.toml``."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    defaults = data.get("defaults", {})
    out = {}
    for route, spec in (data.get("routes", {}) | data.get("jobs", {})).items():
        merged = {**defaults, **spec}
        out[route] = RouteSLO(
            route=route,
            p50_ms=merged.get("p50_ms"),
            p95_ms=merged.get("p95_ms"),
            p99_ms=merged.get("p99_ms"),
            max_error_ratio=float(merged.get("max_error_ratio", 0.01)),
            min_requests=int(merged.get("min_requests", 20)),
        )
    return out


def load_defaults(path: Path = SLO_FILE) -> dict[str, Any]:
    """The ``[load]`` table: the load `make loadtest` applies when given no arguments."""
    return dict(tomllib.loads(path.read_text(encoding="utf-8")).get("load", {}))


def percentile(response_times: dict[int, int], total: int, q: float) -> float:
    """Locust's own percentile of a histogram of rounded response times (ms → count)."""
    if total == 0:
        return math.nan
    keep = int(total * q)
    seen = 0
    for t in sorted(response_times, reverse=True):
        seen += response_times[t]
        if total - seen <= keep:
            return float(t)
    return float(min(response_times))


@dataclass
class RouteResult:
    route: str
    method: str
    requests: int  # answered or failed with a response time
    unsent: int  # failures with no request: dropped or unfinished arrivals
    failures: int  # every failure, unsent included
    rate_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    verdict: str = "no SLO"  # pass | FAIL | no SLO | too few requests
    broken: list[str] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return self.requests + self.unsent

    @property
    def error_ratio(self) -> float:
        return self.failures / self.attempts if self.attempts else math.nan


def judge(summary: dict[str, Any], slos: dict[str, RouteSLO]) -> list[RouteResult]:
    """One result per route that had traffic, with its verdict against ``slos``."""
    unsent: dict[tuple[str, str], int] = {}
    for err in summary.get("errors", []):
        if str(err["error"]).startswith(_UNSENT):
            key = (err["method"], err["name"])
            unsent[key] = unsent.get(key, 0) + int(err["occurrences"])
    # The run's span, from the first request of any route to the last: a route's rate is over
    # the whole run, not over its own first and last request.
    starts = [e["start_time"] for e in summary.get("entries", []) if e.get("start_time")]
    ends = [
        e["last_request_time"] for e in summary.get("entries", []) if e.get("last_request_time")
    ]
    duration = max(ends) - min(starts) if starts and ends else 0.0
    results = []
    for e in summary.get("entries", []):
        hist = {int(k): int(v) for k, v in e.get("response_times_ms", {}).items()}
        n = sum(hist.values())
        p50, p95, p99 = (percentile(hist, n, q) for q in PERCENTILES)
        r = RouteResult(
            route=e["name"],
            method=e["method"],
            requests=int(e["requests"]),
            unsent=unsent.get((e["method"], e["name"]), 0),
            failures=int(e["failures"]),
            rate_rps=e["requests"] / duration if duration > 0 else math.nan,
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
        )
        slo = slos.get(r.route)
        if slo is not None:
            if r.attempts < slo.min_requests:
                r.verdict = "too few requests"
            else:
                for name, got, limit in (
                    ("p50", r.p50_ms, slo.p50_ms),
                    ("p95", r.p95_ms, slo.p95_ms),
                    ("p99", r.p99_ms, slo.p99_ms),
                ):
                    if limit is not None and not got <= limit:
                        r.broken.append(f"{name} {got:.0f} ms > {limit:.0f} ms")
                if not r.error_ratio <= slo.max_error_ratio:
                    r.broken.append(f"errors {r.error_ratio:.2%} > {slo.max_error_ratio:.2%}")
                r.verdict = "FAIL" if r.broken else "pass"
        results.append(r)
    return sorted(results, key=lambda r: r.route)


def passed(results: list[RouteResult]) -> bool:
    """No route broke its SLO (routes without a verdict do not count against it)."""
    return not any(r.verdict == "FAIL" for r in results)


def render_table(results: list[RouteResult], out: TextIO) -> None:
    """The per-route table `make loadtest` prints."""
    width = max([30, *(len(r.route) for r in results)])
    head = (
        f"{'route':<{width}} {'reqs':>6} {'req/s':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
        f" {'errors':>7}  verdict"
    )
    out.write(head + "\n" + "-" * len(head) + "\n")
    for r in results:
        out.write(
            f"{r.route:<{width}} {r.attempts:>6} {r.rate_rps:>6.2f} {r.p50_ms:>7.0f}"
            f" {r.p95_ms:>7.0f} {r.p99_ms:>7.0f} {r.error_ratio:>7.2%}  {r.verdict}"
            + (f": {'; '.join(r.broken)}" if r.broken else "")
            + "\n"
        )


def write_csv(results: list[RouteResult], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["route", "method", "attempts", "requests", "failures", "unsent", "rate_rps",
             "p50_ms", "p95_ms", "p99_ms", "error_ratio", "verdict", "broken"]
        )  # fmt: skip
        for r in results:
            w.writerow(
                [r.route, r.method, r.attempts, r.requests, r.failures, r.unsent,
                 f"{r.rate_rps:.3f}", r.p50_ms, r.p95_ms, r.p99_ms, f"{r.error_ratio:.4f}",
                 r.verdict, "; ".join(r.broken)]
            )  # fmt: skip


def write_json(results: list[RouteResult], path: Path, extra: dict[str, Any]) -> None:
    rows = [{**asdict(r), "attempts": r.attempts, "error_ratio": r.error_ratio} for r in results]
    path.write_text(
        json.dumps({**extra, "passed": passed(results), "routes": rows}, indent=1) + "\n",
        encoding="utf-8",
    )
