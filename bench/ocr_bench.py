"""OCR quality and speed beside Tesseract 5.3 on the OCR dev sets (bench/RESULTS.md's figures).

Usage: python bench/ocr_bench.py [--out bench/results/ocr.json] [--skip-http]
                                 [--sets lines,pages,receipts]

1. CER (rules of ../shared/README.md) of docsum and Tesseract on uw3-lines (248 lines),
   oldbooks-pages (every 3rd page: 38) and the SROIE receipt line crops, with each engine's
   throughput on 2 cores (docsum in-process and pipelined; Tesseract as 2 processes with
   OMP_THREAD_LIMIT=1). Tesseract is installed by scripts/install_tesseract.sh.
2. A real OCR server on 127.0.0.1: pages/s for the 38 old-books pages sent one at a time,
   and with 16 concurrent single-page requests (the dynamic batcher at work).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from docsum.common.probe import wait_ready
from docsum.eval.ocr import evaluate, load_pages

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ocr"
SETS = {
    "lines": (DATA / "uw3-lines", 1),
    "pages": (DATA / "oldbooks-pages", 3),
    "receipts": (DATA / "sroie-receipts", 1),
}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _throughput(url: str, pages: list[bytes], concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    queue = list(enumerate(pages))

    async with httpx.AsyncClient(base_url=url, timeout=300) as client:

        async def worker() -> None:
            while queue:
                _, data = queue.pop()
                t = time.perf_counter()
                r = await client.post("/v1/ocr", files={"file": ("p.png", data)})
                r.raise_for_status()
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "concurrency": concurrency,
        "pages": len(pages),
        "pages_per_s": round(len(pages) / elapsed, 3),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
    }


def http_figures() -> dict[str, object]:
    pages = [s.path.read_bytes() for s in load_pages(DATA / "oldbooks-pages", 3)]
    port = _port()
    env = {**os.environ, "DOCSUM_OCR_PORT": str(port), "DOCSUM_OCR_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "docsum.cli", "serve", "ocr"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, 120, alive=lambda: proc.poll() is None)
        asyncio.run(_throughput(url, pages[:4], 2))  # warm the allocator and caches
        one = asyncio.run(_throughput(url, pages, 1))
        many = asyncio.run(_throughput(url, pages, 16))
        return {
            "sequential": one,
            "concurrent_16": many,
            "speedup": round(many["pages_per_s"] / one["pages_per_s"], 2),
        }
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ocr.json")
    ap.add_argument("--sets", default="lines,pages,receipts")
    ap.add_argument("--skip-http", action="store_true")
    args = ap.parse_args()
    report: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "command": "python bench/ocr_bench.py",
    }
    for name in filter(None, args.sets.split(",")):  # --sets '' : HTTP figures only
        root, every = SETS[name]
        result = evaluate(
            name,
            root,
            every=every,  # type: ignore[arg-type]
            progress=lambda who, n, total, name=name: print(
                f"{name}: {who} {n}/{total}", file=sys.stderr
            ),
        )
        report[name] = result
        ours, peer = result["docsum"], result.get("tesseract", {})
        print(
            f"{name}: docsum CER {ours['cer']} % ({ours['seconds']} s)  "
            f"tesseract CER {peer.get('cer')} % ({peer.get('seconds')} s)",
            file=sys.stderr,
        )
    if not args.skip_http:
        report["http"] = http_figures()
        print(f"http: {report['http']}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
