"""Gateway overhead: what going through the gateway adds to calling a service directly.

Usage: python -m bench.gateway_overhead [--out bench/results/gateway_overhead.json]

Starts the summarizer, the OCR service and the gateway on 127.0.0.1 (logs at WARNING), then:
1. Latency added at 200 requests/s, open loop (requests leave on schedule whether or not the
   earlier ones came back; latency counts from the scheduled time, so queueing is not hidden):
   a cheap route — ``/v1/summarize`` with an empty text, answered 422 by the summarizer before
   the model — directly and through ``/api/v1/summarize``, in alternating rounds.
2. Throughput on the same cheap route, 16 connections in a closed loop, gateway / direct, with
   wrk as the load generator: it costs half the CPU per request of a Python client, CPU the
   servers would otherwise lose on two shared cores (docs/decisions.md).
3. A 10-page scanned PDF (text pages rendered at 300 dpi, wrapped in a PDF by Pillow as JPEGs,
   as a scanner does) through ``documents:summarize``, against the sum of its parts called
   directly one after another: each page's image taken out of the PDF as the gateway does (the
   scanner's JPEG), OCR of each page, one summary of the text.

Parts 1 and 3 send with the gateway's own lean HTTP/1.1 pool (``docsum.gateway.http1``, much
cheaper per call than httpx), part 2 with wrk (``make wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from docsum.gateway.http1 import Http1Transport
from docsum.gateway.pdf import PdfDocument, render_png
from tests.support.documents import ARTICLE, scanned_pdf, text_page
from tests.support.services import GATEWAY_KEY, ROOT, LiveService, start_gateway, start_service
from tests.support.stack import stable_backends

DATA = ROOT.parent / "shared" / "data" / "summarization" / "cnndm-dev.jsonl"
WRK = ROOT / ".tools" / "wrk" / "bin" / "wrk"  # scripts/install_wrk.sh
KEY = GATEWAY_KEY
CHEAP = b'{"text": ""}'  # refused (422) by the summarizer before the model: a routing cost only


#: The services behind the gateway log at WARNING (the same on both paths); the gateway logs
#: as deployed (INFO: one access line per request).
QUIET = "WARNING"


class Client:
    """A pooled client on 127.0.0.1 (the gateway's own HTTP/1.1 pool)."""

    def __init__(self, port: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.port = port
        self.headers = headers
        self.pool = Http1Transport(max_connections=512, max_keepalive=512)

    async def post(self, path: str, body: bytes, content_type: bytes) -> int:
        headers = [*self.headers, (b"content-type", content_type)]
        status, _, _ = await self.pool.send("POST", "127.0.0.1", self.port, path, headers, body)
        return status


async def open_loop(client: Client, path: str, rate: float, n: int) -> list[float]:
    """``n`` requests at ``rate``/s on a fixed schedule; latencies in ms from schedule."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    start = loop.time() + 0.05

    async def one(at: float) -> None:
        await asyncio.sleep(max(0.0, at - loop.time()))
        status = await client.post(path, CHEAP, b"application/json")
        assert status == 422, status
        latencies.append((loop.time() - at) * 1000.0)

    await asyncio.gather(*(one(start + i / rate) for i in range(n)))
    return latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, path: str, headers: dict[str, str], seconds: float) -> tuple[float, int, float]:
    """``wrk``, 16 connections, closed loop, POSTing the cheap body to ``path`` for
    ``seconds``: (requests/s, requests, wrk's own CPU ms per request)."""
    lines = ["wrk.method = 'POST'", f"wrk.body = {json.dumps(CHEAP.decode())}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    before = os.times()
    url = f"http://127.0.0.1:{port}{path}"
    cmd = [str(WRK), "-t1", "-c16", f"-d{seconds:g}s", "-s", script.name, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after = os.times()
    Path(script.name).unlink()
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None or rps is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    n = int(m[1])
    cpu = (after.children_user + after.children_system) - (
        before.children_user + before.children_system
    )
    return float(rps[1]), n, cpu * 1000.0 / n


async def answered(client: Client, route: str, status: str) -> float:
    """``docsum_http_requests_total`` of POST ``route`` with ``status`` from /metrics."""
    code, _, body = await client.pool.send("GET", "127.0.0.1", client.port, "/metrics", [], b"")
    assert code == 200
    series = f'docsum_http_requests_total{{method="POST",route="{route}",status="{status}"}}'
    for line in body.decode().splitlines():
        if line.startswith(series):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def overhead(direct: Client, gateway: Client, rate: float, n: int) -> dict[str, Any]:
    rounds: dict[str, list[float]] = {"direct": [], "gateway": []}
    await open_loop(direct, "/v1/summarize", rate, 200)  # warm both paths
    await open_loop(gateway, "/api/v1/summarize", rate, 200)
    for _ in range(4):  # alternate, so a change in background load hits both alike
        rounds["direct"] += await open_loop(direct, "/v1/summarize", rate, n // 4)
        rounds["gateway"] += await open_loop(gateway, "/api/v1/summarize", rate, n // 4)
    out: dict[str, Any] = {"rate_per_s": rate, "requests_each": n}
    for name, lat in rounds.items():
        out[name] = {"p50_ms": round(_pct(lat, 0.5), 3), "p99_ms": round(_pct(lat, 0.99), 3)}
    out["added_p50_ms"] = round(out["gateway"]["p50_ms"] - out["direct"]["p50_ms"], 3)
    out["added_p99_ms"] = round(out["gateway"]["p99_ms"] - out["direct"]["p99_ms"], 3)
    return out


async def throughput(
    direct: Client,
    gateway: Client,
    gateway_pid: int,
    service_pid: int,
    rounds_n: int = 8,
    seconds: float = 4.0,
) -> dict[str, Any]:
    """Direct and through-the-gateway rounds, alternating, so a change in background load
    hits both alike; the figure is the median of the rounds' ratios (this VM's speed drifts
    by tens of percent within a minute). Each round checks that every request was answered
    422 (the refusal that makes the route cheap), counting on the services' own metrics."""
    if not WRK.exists():
        raise SystemExit(f"{WRK} is missing: run `make wrk` (scripts/install_wrk.sh)")
    paths = {
        "direct": (direct, "/v1/summarize", {"Content-Type": "application/json"}, service_pid),
        "gateway": (
            gateway,
            "/api/v1/summarize",
            {"Content-Type": "application/json", "X-API-Key": KEY},
            gateway_pid,
        ),
    }
    rounds: dict[str, list[float]] = {"direct": [], "gateway": []}
    cpu: dict[str, list[float]] = {"gateway": [], "summarizer": [], "wrk": []}
    for _ in range(rounds_n):
        for name, (client, path, headers, pid) in paths.items():
            count = await answered(client, path, "422")
            svc_cpu, own_cpu = cpu_seconds(service_pid), cpu_seconds(pid)
            rps, n, wrk_ms = wrk(client.port, path, headers, seconds)
            answered_422 = await answered(client, path, "422") - count
            if not n <= answered_422 <= n + 16:  # 16: cut off in flight when wrk stopped
                raise RuntimeError(f"{name}: wrk sent {n} requests, {answered_422} got 422")
            rounds[name].append(rps)
            if name == "gateway":
                cpu["gateway"].append((cpu_seconds(pid) - own_cpu) * 1000.0 / n)
                cpu["summarizer"].append((cpu_seconds(service_pid) - svc_cpu) * 1000.0 / n)
                cpu["wrk"].append(wrk_ms)
    direct_rps, gateway_rps = statistics.mean(rounds["direct"]), statistics.mean(rounds["gateway"])
    ratios = [g / d for d, g in zip(rounds["direct"], rounds["gateway"], strict=True)]
    return {
        "load_generator": "wrk 4.1, 1 thread, 16 connections, closed loop",
        "rounds": rounds_n,
        "seconds_per_round": seconds,
        "direct_rps": round(direct_rps, 1),
        "gateway_rps": round(gateway_rps, 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratio_of_means": round(gateway_rps / direct_rps, 3),
        "ratio_by_round": [round(r, 3) for r in ratios],
        "cpu_ms_per_request_through_gateway": {
            k: round(statistics.median(v), 3) for k, v in cpu.items()
        },
    }


def _pages(n: int) -> list[list[str]]:
    """``n`` pages of news text (CNN/DM dev articles when present, else the test article)."""
    if DATA.exists():
        articles = [json.loads(line)["article"] for line in DATA.read_text().splitlines()[:n]]
        return [a.split(". ")[:14] for a in articles]
    return [ARTICLE * 3 for _ in range(n)]


async def pdf_pipeline(ocr_port: int, summ_port: int, gw_port: int, pdf: bytes) -> dict[str, Any]:
    gateway = Client(gw_port, [(b"x-api-key", KEY.encode())])
    ocr = Client(ocr_port, [])
    summ = Client(summ_port, [])
    boundary = b"docsumbench"

    def form(name: str, data: bytes, media: bytes) -> bytes:
        return (
            b"--" + boundary + b"\r\ncontent-disposition: form-data; name=\"file\"; filename=\""
            + name.encode() + b"\"\r\ncontent-type: " + media + b"\r\n\r\n" + data
            + b"\r\n--" + boundary + b"--\r\n"
        )  # fmt: skip

    multipart = b"multipart/form-data; boundary=" + boundary

    async def through_gateway() -> tuple[float, dict[str, Any]]:
        t = time.perf_counter()
        status, _, body = await gateway.pool.send(
            "POST",
            "127.0.0.1",
            gw_port,
            "/api/v1/documents:summarize",
            [(b"x-api-key", KEY.encode()), (b"content-type", multipart)],
            form("doc.pdf", pdf, b"application/pdf"),
        )
        assert status == 200, body[:300]
        return time.perf_counter() - t, json.loads(body)

    async def parts() -> dict[str, float]:
        t = time.perf_counter()
        files = []  # what the gateway sends: the scanner's JPEG, else a rendered PNG
        with PdfDocument(pdf, max_pages=100) as doc:
            for number in range(1, doc.page_count + 1):
                jpeg = doc.embedded_scan(number, 200, 450)
                if jpeg is not None:
                    files.append((f"p{number}.jpg", jpeg, b"image/jpeg"))
                else:
                    png, _ = render_png(doc, number, 300, 40_000_000)
                    files.append((f"p{number}.png", png, b"image/png"))
        render = time.perf_counter() - t
        texts = []
        t = time.perf_counter()
        for name, image, media in files:
            status, _, body = await ocr.pool.send(
                "POST",
                "127.0.0.1",
                ocr_port,
                "/v1/ocr",
                [(b"content-type", multipart)],
                form(name, image, media),
            )
            assert status == 200, body[:300]
            texts.append(json.loads(body)["text"])
        ocr_s = time.perf_counter() - t
        t = time.perf_counter()
        payload = json.dumps({"text": "\n\n".join(texts)}).encode()
        assert await summ.post("/v1/summarize", payload, b"application/json") == 200
        summarize = time.perf_counter() - t
        return {"pages_to_images": render, "ocr": ocr_s, "summarize": summarize}

    await through_gateway()  # warm-up: connections, code paths
    await parts()
    runs_gw, runs_parts = [], []
    for _ in range(5):  # alternate, so a change in background load hits both alike
        elapsed, body = await through_gateway()
        runs_gw.append((elapsed, body))
        runs_parts.append(await parts())
    gw_s = statistics.median(e for e, _ in runs_gw)
    sums = [sum(p.values()) for p in runs_parts]
    sum_s = statistics.median(sums)
    body = runs_gw[0][1]
    return {
        "pages": len(body["pages"]),
        "pages_ocr": sum(p["source"] == "ocr" for p in body["pages"]),
        "gateway_s": round(gw_s, 3),
        "sum_of_parts_s": round(sum_s, 3),
        "parts_s": {
            k: round(statistics.median(p[k] for p in runs_parts), 3) for k in runs_parts[0]
        },
        "ratio": round(gw_s / sum_s, 3),
        "gateway_timings_ms": body["timings_ms"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench/results/gateway_overhead.json")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--only", choices=["overhead", "throughput", "pdf"], help="one part only")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    services: list[LiveService] = []
    try:
        summ = start_service("summarizer", tmp, {"DOCSUM_SUMMARIZER_LOG_LEVEL": QUIET}, wait=False)
        ocr = start_service("ocr", tmp, {"DOCSUM_OCR_LOG_LEVEL": QUIET}, wait=False)
        services += [summ, ocr]
        gw = start_gateway(
            tmp / "gateway",
            stable_backends(ocr, summ),
            {
                "DOCSUM_GATEWAY_LOG_LEVEL": "INFO",
                "DOCSUM_GATEWAY_RATE_LIMIT_RPS": "1000000",
                "DOCSUM_GATEWAY_RATE_LIMIT_BURST": "1000000",
            },
            wait=False,
        )
        services.append(gw)
        for svc in services:
            svc.wait_ready()
        summ_port, ocr_port, gw_port = summ.port, ocr.port, gw.port
        gw_pid, summ_pid = gw.proc.pid, summ.proc.pid
        pdf = scanned_pdf([text_page(page) for page in _pages(10)])

        async def run() -> dict[str, Any]:
            direct = Client(summ_port, [])
            gateway = Client(gw_port, [(b"x-api-key", KEY.encode())])
            out: dict[str, Any] = {}
            if args.only in (None, "overhead"):
                out["overhead"] = await overhead(direct, gateway, args.rate, args.requests)
            if args.only in (None, "throughput"):
                out["throughput_cheap_route"] = await throughput(direct, gateway, gw_pid, summ_pid)
            if args.only in (None, "pdf"):
                out["scanned_pdf_10_pages"] = await pdf_pipeline(ocr_port, summ_port, gw_port, pdf)
            return out

        load_before = os.getloadavg()[0]
        result = asyncio.run(run())
        result["machine"] = {
            "cpu_threads": os.cpu_count(),
            "load_average_1min_before": round(load_before, 2),
            "load_average_1min_after": round(os.getloadavg()[0], 2),
            "note": "2-core VM: gateway, services and load generator share both cores",
        }
    finally:
        for svc in services:
            svc.stop()
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
