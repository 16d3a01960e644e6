"""``make fuzz``: at least 1,000 generated cases against each API (summarizer, OCR, gateway).

Starts the local stack on free ports (as the tests configure it), runs the schemathesis
harness of ``tests/reliability/fuzzing.py`` against each service's own OpenAPI document, and
writes ``bench/results/fuzz.json``: cases sent, answers by status, failures with a replay
line, time taken. Exits 1 if any case broke a rule (a 5xx, a hang, a malformed error, a
schema-invalid request accepted, a 200 that breaks its schema).

    python -m bench.fuzz --cases 1000 [--seed N] [--out bench/results/fuzz.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from tests.reliability.fuzzing import fuzz_api
from tests.support.services import GATEWAY_KEY, ROOT
from tests.support.stack import NO_RATE_LIMIT, start_stack


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=1000, help="cases per API (at least)")
    p.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: random)")
    p.add_argument("--timeout-s", type=float, default=30.0, help="an answer slower is a hang")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    args = p.parse_args()

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="docsum-fuzz-") as tmp:
        stack = start_stack(Path(tmp), NO_RATE_LIMIT)
        try:
            reports = {}
            for name, svc in stack.services.items():
                headers = {"X-API-Key": GATEWAY_KEY} if name == "gateway" else None
                report = fuzz_api(
                    svc.url, args.cases, headers=headers, timeout_s=args.timeout_s,
                    seed_value=args.seed,
                )  # fmt: skip
                reports[name] = report.to_dict()
                print(
                    f"{name}: {report.cases} cases in {report.elapsed_s:.0f} s, "
                    f"statuses {reports[name]['statuses']}, {report.failed_cases} failed "
                    f"({len(report.failures)} distinct), "
                    f"slowest {report.slowest_s:.2f} s"
                )
                for f in report.failures[:10]:
                    print(f"  - {f.operation} [{f.mode}] {f.rule} ({f.status}): {f.detail[:200]}")
                    print(f"    replay: {f.curl[:300]}")
                if svc.proc.poll() is not None:
                    print(f"{name} exited during the run:\n{svc.logs()[-2000:]}")
                    return 1
        finally:
            stack.stop()
    result = {
        "command": f"python -m bench.fuzz --cases {args.cases}",
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()})",
        "cases_per_api": args.cases,
        "apis": reports,
        "total_cases": sum(r["cases"] for r in reports.values()),
        "total_failed_cases": sum(r["failed_cases"] for r in reports.values()),
        "seconds": round(time.time() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['total_cases']} cases, {result['total_failed_cases']} failed → {args.out}")
    return 1 if result["total_failed_cases"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
