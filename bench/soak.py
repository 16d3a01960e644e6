"""``make soak``: the stack under steady mixed load for 10 minutes; memory must stay flat.

Starts summarizer, OCR and gateway on free ports and sends, through the gateway, a steady
closed-loop mix: summaries, OCR of a page, documents (a text PDF, a scanned page), and a
share of hostile inputs from the test corpus (refused with 4xx: error paths must not leak
either). Every ``--sample-s`` seconds it records each process's resident memory (RSS), open
files and TCP connections.

Memory growth is measured from the end of the warm-up (allocators, caches and pools fill in
the first minute) to the end of the run, on the median of each window's samples so one GC
pause does not decide it: ``(median of the last window − median of the first) / first``.
The run fails (exit 1) if a valid request is lost (any answer but 200), a hostile one is not
refused with a 4xx, or any service's RSS grows by ``--max-growth`` (5 %) or more.

    python -m bench.soak --minutes 10 [--out bench/results/soak.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.hostile import corpus
from tests.reliability.load import LoadLoop
from tests.support.documents import page_image, png_bytes
from tests.support.services import GATEWAY_KEY, ROOT
from tests.support.stack import NO_RATE_LIMIT, ProcStats, start_stack

AUTH = {"X-API-Key": GATEWAY_KEY}
ARTICLE = " ".join(corpus.SENTENCES * 6)


def request_mix(gateway_url: str) -> Any:
    """The send function of the load loop: valid requests, 1 in 10 hostile."""
    page = png_bytes(page_image()[0])
    text_pdf = corpus.build_pdf([list(corpus.SENTENCES)] * 2)
    hostile = [h for h in corpus.image_corpus() + corpus.document_corpus() if h.statuses[0] >= 400]
    hostile_json = [
        body
        for body, statuses, _ in corpus.json_corpus().values()
        if statuses[0] >= 400 and len(body) < 1_000_000
    ]
    counter = itertools.count()

    async def send(client: httpx.AsyncClient) -> httpx.Response:
        n = next(counter)
        if n % 10 == 9:  # hostile: the answer must be a 4xx
            k = n // 10
            if k % 3 == 2:
                r = await client.post(
                    f"{gateway_url}/api/v1/summarize",
                    content=hostile_json[k % len(hostile_json)],
                    headers={**AUTH, "content-type": "application/json"},
                )
            else:
                h = hostile[k % len(hostile)]
                route = "documents:summarize" if h.content_type == "application/pdf" else "ocr"
                r = await client.post(
                    f"{gateway_url}/api/v1/{route}",
                    files={"file": (h.filename, h.data, h.content_type)},
                    headers=AUTH,
                )
            # Report a right refusal as 200 ("as it should be") and a wrong answer as itself.
            return httpx.Response(200) if 400 <= r.status_code < 500 else r
        kind = n % 4
        if kind == 0:
            return await client.post(
                f"{gateway_url}/api/v1/summarize", json={"text": ARTICLE}, headers=AUTH
            )
        if kind == 1:
            return await client.post(
                f"{gateway_url}/api/v1/ocr",
                files={"file": ("page.png", page, "image/png")},
                headers=AUTH,
            )
        data, name, ctype = (
            (text_pdf, "doc.pdf", "application/pdf") if kind == 2 else (page, "p.png", "image/png")
        )
        return await client.post(
            f"{gateway_url}/api/v1/documents:summarize",
            files={"file": (name, data, ctype)},
            headers=AUTH,
        )

    return send


def _median_rss(samples: list[dict[str, Any]], name: str, t0: float, t1: float) -> float:
    window = [s[name]["rss_bytes"] for s in samples if t0 <= s["t"] <= t1]
    return float(statistics.median(window))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--warmup-s", type=float, default=60.0)
    p.add_argument("--window-s", type=float, default=60.0, help="seconds averaged at each end")
    p.add_argument("--sample-s", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-growth", type=float, default=0.05)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    args = p.parse_args()
    duration = args.minutes * 60

    with tempfile.TemporaryDirectory(prefix="docsum-soak-") as tmp:
        stack = start_stack(Path(tmp), NO_RATE_LIMIT)
        services = stack.services
        samples: list[dict[str, Any]] = []
        try:
            started = time.monotonic()
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    row: dict[str, Any] = {"t": round(time.monotonic() - started, 1)}
                    for name, svc in services.items():
                        row[name] = ProcStats.of(svc.proc.pid).to_dict()
                    samples.append(row)
                    stop.wait(args.sample_s)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            with LoadLoop(request_mix(stack.gateway.url), args.concurrency, 120) as load:
                while time.monotonic() - started < duration:
                    time.sleep(1)
                    dead = [n for n, s in services.items() if s.proc.poll() is not None]
                    if dead:
                        print(f"{dead} exited during the soak")
                        break
            stop.set()
            sampler.join()
            report = load.report
        finally:
            stack.stop()

    end = samples[-1]["t"]
    start_window = (args.warmup_s, args.warmup_s + args.window_s)
    end_window = (end - args.window_s, end)
    growth = {}
    for name in services:
        first = _median_rss(samples, name, *start_window)
        last = _median_rss(samples, name, *end_window)
        growth[name] = {
            "rss_after_warmup_mb": round(first / 2**20, 1),
            "rss_at_end_mb": round(last / 2**20, 1),
            "growth_pct": round(100 * (last - first) / first, 2),
            "open_fds": [samples[0][name]["open_fds"], samples[-1][name]["open_fds"]],
            "tcp_connections": [
                samples[0][name]["tcp_connections"],
                samples[-1][name]["tcp_connections"],
            ],
        }
    result = {
        "command": f"python -m bench.soak --minutes {args.minutes:g}",
        "machine": f"{platform.node()} ({platform.processor() or platform.machine()})",
        "seconds": round(report.elapsed_s, 1),
        "concurrency": args.concurrency,
        "requests_sent": report.sent,
        "requests_lost": report.lost,
        "outcomes": {str(k): v for k, v in report.outcomes.items()},
        "first_failures": report.failures[:10],
        "p50_latency_s": round(statistics.median(report.latencies_s), 3),
        "p99_latency_s": round(statistics.quantiles(report.latencies_s, n=100)[98], 3),
        "memory": growth,
        "max_growth_pct": 100 * args.max_growth,
        "samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{report.sent} requests in {report.elapsed_s:.0f} s, {report.lost} lost; "
        f"p50 {result['p50_latency_s']} s, p99 {result['p99_latency_s']} s"
    )
    for name, g in growth.items():
        print(
            f"  {name}: RSS {g['rss_after_warmup_mb']} → {g['rss_at_end_mb']} MB "
            f"({g['growth_pct']:+.2f} %), fds {g['open_fds']}, tcp {g['tcp_connections']}"
        )
    print(f"→ {args.out}")
    too_much = [n for n, g in growth.items() if g["growth_pct"] >= 100 * args.max_growth]
    return 1 if report.lost or too_much else 0


if __name__ == "__main__":
    raise SystemExit(main())
