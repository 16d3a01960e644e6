"""The ``docsum`` client mode's throughput: a batch of 100 texts through a gateway, -j 1 and -j 8.

Usage: python -m bench.client_bench [--url URL --api-key KEY] [--rounds 2]
       [--out bench/results/client.json]

Without ``--url`` it starts what ``make run`` starts (summarizer, OCR, gateway on 127.0.0.1,
default settings) and stops it afterwards. The batch is 100 news-like texts made in code
(``loadtests.payloads.article``, 150–400 words each), one JSONL file; each run is the real
command, ``docsum --url URL summarize --jsonl FILE -j N``, timed from start to exit (process
start included), in alternating rounds so that a drift of the machine's speed hits both.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loadtests.payloads import article
from tests.support.services import GATEWAY_KEY, ROOT, start_gateway, start_service
from tests.support.stack import stable_backends

JOBS = (1, 8)
TEXTS = 100


def batch(path: Path, n: int = TEXTS, seed: int = 11) -> list[int]:
    """Write ``n`` texts as ``{id, text}`` lines to ``path``; their lengths in words."""
    rng = random.Random(seed)
    words = []
    with path.open("w") as fh:
        for i in range(n):
            text = article(rng.randint(150, 400), rng)
            words.append(len(text.split()))
            fh.write(json.dumps({"id": i, "text": text}) + "\n")
    return words


def run_once(url: str, key: str, path: Path, jobs: int, texts: int = TEXTS) -> float:
    """Seconds for ``docsum --url URL summarize --jsonl path -j jobs``; checks every row."""
    cmd = [sys.executable, "-m", "docsum.cli", "--url", url, "--api-key", key]
    cmd += ["summarize", "--jsonl", str(path), "-j", str(jobs)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
    seconds = time.perf_counter() - start
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    if done.returncode != 0 or len(rows) != texts or any("error" in r for r in rows):
        raise RuntimeError(f"-j {jobs}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", help="a running gateway (default: start the stack here)")
    p.add_argument("--api-key", default=os.environ.get("DOCSUM_API_KEY", ""), help="its key")
    p.add_argument("--rounds", type=int, default=2, help="runs of each -j, alternating")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "client.json")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        path = tmp / "batch.jsonl"
        words = batch(path)
        warm = tmp / "warm.jsonl"
        warm.write_text("".join(path.read_text().splitlines(keepends=True)[:16]))
        services = []
        url, key = args.url, args.api_key
        if not url:
            summarizer = start_service("summarizer", tmp)
            ocr = start_service("ocr", tmp)
            gateway = start_gateway(tmp / "gateway", stable_backends(ocr, summarizer))
            services = [gateway, ocr, summarizer]
            url, key = gateway.url, GATEWAY_KEY
        try:
            run_once(url, key, warm, 8, texts=16)  # warm-up: first batches, connection pools
            load_before = os.getloadavg()[0]
            seconds: dict[int, list[float]] = {j: [] for j in JOBS}
            for _ in range(args.rounds):
                for jobs in JOBS:
                    seconds[jobs].append(run_once(url, key, path, jobs))
                    print(f"-j {jobs}: {seconds[jobs][-1]:.1f} s", file=sys.stderr)
            load_after = os.getloadavg()[0]
        finally:
            for svc in services:
                svc.stop()
    result: dict[str, Any] = {
        "command": "python -m bench.client_bench",
        "stack": "started here, default settings" if not args.url else "given by --url",
        "texts": TEXTS,
        "words": {"median": statistics.median(words), "min": min(words), "max": max(words)},
        "rounds": args.rounds,
        "seconds": {str(j): [round(s, 2) for s in v] for j, v in seconds.items()},
        "docs_per_s": {str(j): round(TEXTS / statistics.median(v), 2) for j, v in seconds.items()},
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min_before": round(load_before, 2),
            "load_average_1min_after": round(load_after, 2),
        },
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["docs_per_s"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
