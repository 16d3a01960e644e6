"""The highest sustained request rate per route at which the SLOs hold (loadtests/README.md).

For each route alone, open-loop arrivals (Poisson) at rising rates, ``--run-time`` each; a
rate passes when the route's p50/p95/p99 and error ratio meet ``slo.toml``. The search stops
at the first rate that fails; the figure is the last that passed.

    python -m loadtests.capacity                       # every route, the stack as make loadtest
    python -m loadtests.capacity --routes summarize --rates 2,3,4 --run-time 60s

Writes ``reports/capacity.json`` and prints a Markdown table for loadtests/README.md. A run takes
routes × rates × (run time + ~15 s); the defaults take 10-20 minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

from loadtests import report, run

#: Rates tried per route (requests/s), lowest first: a page of OCR costs ~10× a summary.
LADDERS: dict[str, list[float]] = {
    "summarize": [0.5, 1, 1.5, 2, 3, 4, 6, 8],
    "ocr": [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0],
    "document": [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0],
    "summarize_async": [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0],
}

log = logging.getLogger("docsum.loadtest")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{os.cpu_count()} × {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({platform.machine()})"


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="capacity: %(message)s")
    p = argparse.ArgumentParser(prog="python -m loadtests.capacity", description=__doc__)
    p.add_argument("--routes", default="summarize,ocr,document")
    p.add_argument("--rates", default="", help="comma-separated rates (default: per route)")
    p.add_argument("--run-time", default="60s")
    p.add_argument("--target", choices=["gateway", "direct"], default="gateway")
    p.add_argument("--out", type=Path, default=run.ROOT / "reports" / "capacity")
    args = p.parse_args(argv)
    # `kill` stops a run like Ctrl-C does: the stack started here is stopped on the way out.
    signal.signal(signal.SIGTERM, _interrupt)

    routes = args.routes.split(",")
    base = run.parser().parse_args(["--target", args.target, "--run-time", args.run_time])
    env = {
        **os.environ,
        "DOCSUM_GATEWAY_RATE_LIMIT_RPS": "1000",
        "DOCSUM_GATEWAY_RATE_LIMIT_BURST": "1000",
    }
    base.routes = args.routes
    jobs = args.target == "gateway" and run.needs_jobs(args.routes)
    stack = run.ensure_stack(run.stack_urls(base), True, Path(f"{args.out}_stack.log"), env, jobs)
    slos = report.load_slos()
    findings: list[dict[str, Any]] = []
    try:
        env["DOCSUM_API_KEY"] = run.api_key()
        if jobs:
            run.prepare_jobs(stack, base.host, env["DOCSUM_API_KEY"])
        for route in routes:
            rates = [float(r) for r in args.rates.split(",")] if args.rates else LADDERS[route]
            best: dict[str, Any] | None = None
            first_fail: dict[str, Any] | None = None
            for rate in rates:
                one = run.parser().parse_args(
                    ["--target", args.target, "--run-time", args.run_time, "--routes", route,
                     "--arrival-rate", str(rate)]
                )  # fmt: skip
                prefix = Path(f"{args.out}_{route}_{rate:g}")
                summary = run.run_locust(one, prefix, env)
                results = [r for r in report.judge(summary, slos) if r.route in slos]
                [r] = results
                row = {
                    "route": r.route,
                    "offered_rps": rate,
                    "achieved_rps": round(r.rate_rps, 3),
                    "requests": r.attempts,
                    "p50_ms": r.p50_ms,
                    "p95_ms": r.p95_ms,
                    "p99_ms": r.p99_ms,
                    "error_ratio": round(r.error_ratio, 4),
                    "verdict": r.verdict,
                    "broken": r.broken,
                    "load_average_1m": round(os.getloadavg()[0], 2),
                }
                log.info("%s at %g req/s: %s %s", r.route, rate, r.verdict, "; ".join(r.broken))
                findings.append(row)
                if r.verdict == "pass":
                    best = row
                else:
                    first_fail = row
                    break
                time.sleep(5)  # let queues empty between rates
            findings.append({"route": route, "best": best, "first_fail": first_fail})
    finally:
        stack.stop()

    meta = {
        "cpu": _cpu(),
        "load_average_1m_at_end": os.getloadavg()[0],
        "run_time": args.run_time,
        "target": args.target,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps({**meta, "runs": findings}, indent=1) + "\n")
    out = sys.stdout
    out.write(f"\n{meta['cpu']}, {args.run_time} per rate, open loop, {meta['when']}\n\n")
    out.write("| route | highest rate within SLO | p50 / p95 / p99 there | next rate tried |\n")
    out.write("|---|---|---|---|\n")
    for f in findings:
        if "best" not in f:
            continue
        b, nf = f["best"], f["first_fail"]
        name = b["route"] if b else (nf["route"] if nf else f["route"])
        best_s = f"{b['offered_rps']:g} req/s" if b else "none of the rates tried"
        lat = f"{b['p50_ms']:.0f} / {b['p95_ms']:.0f} / {b['p99_ms']:.0f} ms" if b else "—"
        fail_s = (
            f"{nf['offered_rps']:g} req/s: {'; '.join(nf['broken']) or nf['verdict']}"
            if nf
            else "all passed"
        )
        out.write(f"| `{name}` | {best_s} | {lat} | {fail_s} |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
