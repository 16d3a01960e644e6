"""Summarizer speed: JSONL throughput in-process, and latency and throughput over HTTP.

Usage: python -m bench.summarize_speed [--out bench/results/summarize_speed.json]
1. `docsum summarize --jsonl` path: CNN/DM dev articles (75, twice per round), documents/s
   after the model is loaded and warm, for each precision (default: auto, i.e. bf16 here, and
   int8), in alternating rounds.
2. A real server on 127.0.0.1 per precision: p50/p95 latency of one ~600-word article sent 40
   times in a row, then documents/s with 16 concurrent clients (dynamic batching at work).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from docsum.summarizer.jsonl import summarize_jsonl
from docsum.summarizer.settings import SummarizerSettings
from docsum.summarizer.summarize import Summarizer
from tests.support.services import start_service

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "summarization"


def jsonl_throughput(lines: list[str], precisions: list[str], rounds: int) -> dict[str, Any]:
    """Documents/s of each precision, in rounds that alternate between them (this VM's speed
    drifts by tens of percent within minutes): the median round, and every round."""
    models = {}
    for precision in precisions:
        models[precision] = Summarizer(SummarizerSettings(precision=precision))  # type: ignore[arg-type]
        models[precision].load()
        models[precision].warmup()
    text = "".join(lines * 2)
    rates: dict[str, list[float]] = {p: [] for p in precisions}
    for _ in range(rounds):
        for precision, model in models.items():
            start = time.perf_counter()
            summarize_jsonl(model, io.StringIO(text), io.StringIO(), None, None, 32)
            rates[precision].append(2 * len(lines) / (time.perf_counter() - start))
    return {
        p: {"median": round(statistics.median(r), 2), "rounds": [round(x, 2) for x in r]}
        for p, r in rates.items()
    }


def http_figures(article: str, others: list[str], precision: str) -> dict[str, float]:
    env = {"DOCSUM_SUMMARIZER_LOG_LEVEL": "WARNING", "DOCSUM_SUMMARIZER_PRECISION": precision}
    with tempfile.TemporaryDirectory(prefix="summarize-speed-") as tmp:
        server = start_service("summarizer", Path(tmp), env)
        try:
            return _latency_and_rate(server.url, article, others)
        finally:
            server.stop()


def _latency_and_rate(url: str, article: str, others: list[str]) -> dict[str, float]:
    lat = []
    with httpx.Client(timeout=60) as c:
        for _ in range(40):
            t = time.perf_counter()
            c.post(f"{url}/v1/summarize", json={"text": article}).raise_for_status()
            lat.append(time.perf_counter() - t)

    async def concurrent() -> float:
        async with httpx.AsyncClient(timeout=120) as c:
            queue = list(others)

            async def worker() -> None:
                while queue:
                    text = queue.pop()
                    (await c.post(f"{url}/v1/summarize", json={"text": text})).raise_for_status()

            t = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(16)))
            return len(others) / (time.perf_counter() - t)

    rate = asyncio.run(concurrent())
    lat.sort()
    return {
        "p50_ms": round(1000 * statistics.median(lat), 1),
        "p95_ms": round(1000 * lat[int(0.95 * len(lat)) - 1], 1),
        "concurrent16_docs_per_s": round(rate, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench/results/summarize_speed.json")
    ap.add_argument("--precisions", default="auto,int8", help="comma-separated (auto: bf16 here)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    precisions = args.precisions.split(",")
    lines = (DATA / "cnndm-dev.jsonl").read_text().splitlines(keepends=True)
    articles = [json.loads(x)["article"] for x in lines]
    # The article closest to 600 words: the latency target is for that size.
    article = min(articles, key=lambda a: abs(len(a.split()) - 600))
    result = {
        "jsonl_docs_per_s": jsonl_throughput(lines, precisions, args.rounds),
        "article_words": len(article.split()),
        "http": {p: http_figures(article, articles * 2, p) for p in precisions},
        "cpu_threads": os.cpu_count(),
    }
    print(json.dumps(result))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
