"""Async jobs: what the queue costs and carries (issue 17).

Usage: python -m bench.jobs_bench [--out bench/results/jobs.json] [--quick]

Starts Redis (.tools/redis, ``make redis``), the summarizer, the OCR service, a gateway and
workers on 127.0.0.1, then:

1. Overhead of the async path for a 1-page scanned page (300 dpi PNG): the synchronous
   ``documents:summarize`` against submit + ``?wait=30s`` until done, in alternating rounds;
   p50 and p95 of each with 95 % bootstrap intervals. OCR time varies by far more than the
   queue costs (on a shared machine, seconds), so the overhead is also measured net of it:
   each answer's latency minus the pipeline's own ``timings_ms.total`` (the sync one includes
   reading the upload, the async one starts from the stored input), async against sync.
2. Throughput: a batch of 2-page TIFFs submitted at once, jobs/s and pages/s until the last is
   done, with 1 and then 2 workers.
3. A 100-page scanned TIFF (pages made by tests/support/documents) submitted async: its
   progress sampled every second while it runs, and its time to done.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from docsum.jobs.redis_server import REDIS_SERVER
from docsum.jobs.settings import WorkerSettings
from tests.support.documents import ARTICLE, png_bytes, text_page, tiff_bytes
from tests.support.jobs import AUTH, RedisServer, start_jobs
from tests.support.services import ROOT, free_port, start_service
from tests.support.stack import OCR_ENV, SUMMARIZER_ENV, stable_backends

#: Alternating rounds of the 1- and 2-worker throughput.
THROUGHPUT_ROUNDS = 3


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _interval(values: list[float], q: float, rounds: int = 2000) -> list[float]:
    """95 % bootstrap interval of the ``q`` quantile of ``values``."""
    rng = random.Random(17)
    stats = sorted(_pct(rng.choices(values, k=len(values)), q) for _ in range(rounds))
    return [round(stats[int(0.025 * rounds)], 2), round(stats[int(0.975 * rounds)], 2)]


def _summary(ms: list[float]) -> dict[str, Any]:
    return {
        "n": len(ms),
        "p50_ms": round(_pct(ms, 0.5), 2),
        "p50_ci95_ms": _interval(ms, 0.5),
        "p95_ms": round(_pct(ms, 0.95), 2),
        "p95_ci95_ms": _interval(ms, 0.95),
    }


def _median_gap(a: list[float], b: list[float], rounds: int = 2000) -> dict[str, Any]:
    rng = random.Random(18)
    gaps = sorted(
        statistics.median(rng.choices(a, k=len(a))) - statistics.median(rng.choices(b, k=len(b)))
        for _ in range(rounds)
    )
    return {
        "p50_gap_ms": round(statistics.median(a) - statistics.median(b), 2),
        "ci95_ms": [round(gaps[int(0.025 * rounds)], 2), round(gaps[int(0.975 * rounds)], 2)],
    }


def _form(data: bytes, name: str) -> dict[str, Any]:
    return {"file": (name, data, "application/octet-stream")}


def overhead(client: httpx.Client, url: str, rounds: int) -> dict[str, Any]:
    page = png_bytes(text_page(ARTICLE))
    sync: list[float] = []
    async_: list[float] = []
    sync_net: list[float] = []  # latency minus the pipeline's own time
    async_net: list[float] = []
    for i in range(rounds + 2):
        t = time.perf_counter()
        r = client.post(f"{url}/api/v1/documents:summarize", files=_form(page, "p.png"))
        assert r.status_code == 200, r.text
        s = (time.perf_counter() - t) * 1000
        s_pipeline = r.json()["timings_ms"]["total"]
        t = time.perf_counter()
        r = client.post(f"{url}/api/v1/documents:summarizeAsync", files=_form(page, "p.png"))
        assert r.status_code == 202, r.text
        name = r.json()["name"]
        while True:
            op = client.get(f"{url}/api/v1/{name}?wait=30s").json()
            if op["done"]:
                break
        assert op["metadata"]["state"] == "succeeded", op
        a = (time.perf_counter() - t) * 1000
        a_pipeline = op["response"]["timings_ms"]["total"]
        if i >= 2:  # two warm-up rounds
            sync.append(s)
            async_.append(a)
            sync_net.append(s - s_pipeline)
            async_net.append(a - a_pipeline)
    return {
        "document": "1 page, 300 dpi PNG",
        "sync": _summary(sync),
        "async": _summary(async_),
        "async_minus_sync": _median_gap(async_, sync),
        "outside_the_pipeline": {
            "sync": _summary(sync_net),
            "async": _summary(async_net),
            "async_minus_sync": _median_gap(async_net, sync_net),
        },
        "target_p50_ms": 50,
    }


def _wait_all(client: httpx.Client, url: str, names: list[str]) -> None:
    for name in names:
        while not client.get(f"{url}/api/v1/{name}?wait=30s").json()["done"]:
            pass


def throughput(client: httpx.Client, url: str, jobs: int) -> dict[str, Any]:
    tiff = tiff_bytes([text_page(ARTICLE), text_page(ARTICLE[::-1])])
    t = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: client.post(
                    f"{url}/api/v1/documents:summarizeAsync", files=_form(tiff, "t.tiff")
                ),
                range(jobs),
            )
        )
    names = [a.json()["name"] for a in answers]
    _wait_all(client, url, names)
    seconds = time.perf_counter() - t
    return {
        "jobs": jobs,
        "pages_per_job": 2,
        "seconds": round(seconds, 2),
        "jobs_per_s": round(jobs / seconds, 3),
        "pages_per_s": round(2 * jobs / seconds, 3),
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median round, with every round's jobs/s beside it."""
    middle = sorted(runs, key=lambda r: r["jobs_per_s"])[len(runs) // 2]
    return {**middle, "rounds_jobs_per_s": [r["jobs_per_s"] for r in runs]}


def long_document(client: httpx.Client, url: str, pages: int) -> dict[str, Any]:
    tiff = tiff_bytes([text_page(ARTICLE[i % 6 :] + ARTICLE[: i % 6]) for i in range(pages)])
    t = time.perf_counter()
    r = client.post(f"{url}/api/v1/documents:summarizeAsync", files=_form(tiff, "long.tiff"))
    assert r.status_code == 202, r.text
    name = r.json()["name"]
    progress: list[list[float]] = []
    while True:
        op = client.get(f"{url}/api/v1/{name}").json()
        meta = op["metadata"]
        progress.append([round(time.perf_counter() - t, 1), meta["pages_done"]])
        if op["done"]:
            break
        time.sleep(1.0)
    seconds = time.perf_counter() - t
    assert meta["state"] == "succeeded", op
    return {
        "pages": pages,
        "tiff_bytes": len(tiff),
        "seconds": round(seconds, 1),
        "pages_per_s": round(pages / seconds, 3),
        "pages_in_result": len(op["response"]["pages"]),
        "progress_samples_while_running": sum(0 < p < pages for _, p in progress),
        "progress": progress[:: max(1, len(progress) // 40)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench/results/jobs.json")
    ap.add_argument("--quick", action="store_true", help="fewer rounds, a 20-page document")
    args = ap.parse_args()
    if not (ROOT / REDIS_SERVER).exists():
        raise SystemExit("Redis is not installed: make redis")
    rounds, batch, pages = (10, 6, 20) if args.quick else (40, 24, 100)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        redis = RedisServer(tmp / "redis", free_port())
        redis.start()
        quiet = {"DOCSUM_SUMMARIZER_LOG_LEVEL": "WARNING", "DOCSUM_OCR_LOG_LEVEL": "WARNING"}
        summarizer = start_service("summarizer", tmp, {**SUMMARIZER_ENV, **quiet})
        ocr = start_service("ocr", tmp, {**OCR_ENV, **quiet})
        jobs = start_jobs(
            tmp / "jobs",
            redis.url(0),
            stable_backends(ocr, summarizer),
            {"DOCSUM_GATEWAY_LOG_LEVEL": "WARNING"},
        )
        quiet_worker = {"DOCSUM_WORKER_LOG_LEVEL": "WARNING"}
        try:
            jobs.start_worker(quiet_worker)
            url = jobs.gateway.url
            with httpx.Client(headers=AUTH, timeout=120) as client:
                result: dict[str, Any] = {
                    "command": "python -m bench.jobs_bench" + (" --quick" if args.quick else ""),
                    "worker_concurrency": WorkerSettings().concurrency,
                    "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
                    "overhead": overhead(client, url, rounds),
                }
                result["long_document"] = long_document(client, url, pages)
                # 1 and 2 workers in alternating rounds: the machine's speed drifts.
                runs: dict[str, list[dict[str, Any]]] = {"1_worker": [], "2_workers": []}
                for _ in range(THROUGHPUT_ROUNDS):
                    runs["1_worker"].append(throughput(client, url, batch))
                    jobs.start_worker(quiet_worker)
                    runs["2_workers"].append(throughput(client, url, batch))
                    jobs.workers.pop().stop()
                result["throughput"] = {k: _median_run(v) for k, v in runs.items()}
                result["machine"]["load_avg_1m_end"] = os.getloadavg()[0]
        finally:
            jobs.stop()
            ocr.stop()
            summarizer.stop()
            redis.stop()
    print(json.dumps(result, indent=2))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
