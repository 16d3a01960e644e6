"""OCR and summarizer on one device (CUDA by default): outputs checked against the CPU, speed
at batch 1/16/256 in-process, and real servers at 1 vs 16 concurrent HTTP clients.

Usage: python -m bench.gpu_bench [--device cuda|cpu] [--precision auto] [--quick]
                                 [--seconds 10] [--out out/gpu.json]
(bench/gpu.sh installs what this needs on a bare machine, then runs it.)

Inputs are made in code (bench/gpu_inputs.py). One JSON file holds every figure:

* ``match``: the device's readings of text lines and pages (its ``--precision``) against the
  CPU's in fp32, as CER between the two texts (at most ``OCR_MATCH_MAX_CER`` %); the sentences
  each summary picks (identical for at least ``SUMMARY_MATCH_MIN`` of articles) and the
  sentence embeddings (cosine at least ``EMBEDDING_MIN_COSINE``).
  Exit status 1 when a check fails or an HTTP request did (the JSON is written first).
* ``ocr_lines`` / ``ocr_pages`` / ``summarizer``: lines/s, pages/s, articles/s with a batch of
  1, 16 and 256: line crops per recognizer call and forward pass; for pages, line crops per
  forward pass (pages read 8 at a time, page analysis on the CPU); articles per call.
* ``http``: ``docsum serve ocr|summarizer`` on 127.0.0.1 on the device, pages/s and
  articles/s with 1 client and with 16 concurrent clients, p50/p95 latency.

Each speed figure runs over its inputs or for ``--seconds``, whichever ends first. The file is
rewritten after each phase (``"complete": false`` until the last), so a run stopped part-way
leaves what it measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image

from bench.gpu_inputs import Article, articles, pages, text_lines
from docsum.ocr.engine import OCREngine, document_text
from docsum.ocr.settings import OCRSettings
from docsum.ocr.train.train import levenshtein
from docsum.summarizer.settings import SummarizerSettings
from docsum.summarizer.summarize import Summarizer, SummaryRequest
from tests.support.services import LiveService, start_service

T = TypeVar("T")
BATCHES = (1, 16, 256)
#: Most CER (%) between the device's and the CPU's readings of the same images.
OCR_MATCH_MAX_CER = 0.5
#: Least share of articles whose summary picks the same sentences on both. Not all: where two
#: sentences score alike, rounding in a lower precision may swap them (bf16 on a CPU swapped
#: one of 8 generated articles, whose sentences share templates).
SUMMARY_MATCH_MIN = 0.75
#: Least cosine between the device's and the CPU's embedding of any sentence (bf16 on a CPU:
#: 0.99993): this is what tells a broken device path from rounding.
EMBEDDING_MIN_COSINE = 0.999
#: Pages per read_stream chunk: a chunk's page analysis overlaps the previous chunk's reading.
PAGE_CHUNK = 8


@dataclass(frozen=True)
class Sizes:
    lines: int
    pages: int
    articles: int
    check_lines: int
    check_pages: int
    check_articles: int
    http_pages: int
    http_articles: int


FULL = Sizes(2048, 48, 512, 256, 4, 64, 48, 256)
QUICK = Sizes(24, 2, 8, 24, 1, 8, 2, 8)


# -- measuring ---------------------------------------------------------------------------------


def cer(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Edits / reference characters over all pairs, in percent."""
    edits = sum(levenshtein(h, r) for h, r in zip(hyps, refs, strict=True))
    return round(100.0 * edits / max(1, sum(len(r) for r in refs)), 3)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def rate(
    items: Sequence[T], batch: int, call: Callable[[Sequence[T]], object], cap_s: float, unit: str
) -> dict[str, Any]:
    """``call`` on consecutive slices of ``batch`` items, after one warm-up call, until the
    items or ``cap_s`` seconds run out; items per second."""
    call(items[:batch])
    done, started = 0, time.perf_counter()
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        call(chunk)
        done += len(chunk)
        if time.perf_counter() - started > cap_s:
            break
    seconds = time.perf_counter() - started
    return {unit: done, "seconds": round(seconds, 3), f"{unit}_per_s": round(done / seconds, 2)}


# -- OCR -----------------------------------------------------------------------------------------


def ocr_engine(device: str, precision: str) -> OCREngine:
    engine = OCREngine(OCRSettings(device=device, precision=precision))
    engine.load()
    engine.warmup()
    return engine


def read_lines(engine: OCREngine, images: Sequence[np.ndarray]) -> list[str]:
    return [r.text if not isinstance(r, Exception) else "" for r in engine.recognize(list(images))]


def read_pages(engine: OCREngine, images: Sequence[np.ndarray]) -> list[str]:
    out = []
    for _, result in engine.read_stream(images, lambda p: [p], "page", PAGE_CHUNK):
        out.append("" if isinstance(result, Exception) else document_text(result))
    return out


def one_line(text: str) -> str:
    return " ".join(text.split())


def ocr_match(
    device: OCREngine, cpu: OCREngine, lines: list[tuple[np.ndarray, str]], page_set: list
) -> dict[str, Any]:
    line_imgs, line_truth = [x[0] for x in lines], [x[1] for x in lines]
    page_imgs, page_truth = [x[0] for x in page_set], [x[1] for x in page_set]
    result: dict[str, Any] = {}
    for name, imgs, truth, read in (
        ("lines", line_imgs, line_truth, read_lines),
        ("pages", page_imgs, page_truth, read_pages),
    ):
        ours = [one_line(t) for t in read(device, imgs)]
        ref = [one_line(t) for t in read(cpu, imgs)]
        between = cer(ours, ref)
        result[name] = {
            "items": len(imgs),
            "cer_device_vs_cpu": between,
            "differing": sum(a != b for a, b in zip(ours, ref, strict=True)),
            "cer_vs_truth": {"device": cer(ours, truth), "cpu_fp32": cer(ref, truth)},
            "max_cer": OCR_MATCH_MAX_CER,
            "passed": between <= OCR_MATCH_MAX_CER,
        }
    return result


def ocr_speed(
    engine: OCREngine, lines: list[np.ndarray], page_imgs: list[np.ndarray], cap_s: float
) -> dict[str, Any]:
    line_rates, page_rates = {}, {}
    for b in BATCHES:
        engine.recognizer.forward_batch = b
        line_rates[str(b)] = rate(lines, b, lambda c: read_lines(engine, c), cap_s, "lines")
        page_rates[str(b)] = rate(
            page_imgs, PAGE_CHUNK, lambda c: read_pages(engine, c), cap_s, "pages"
        )
    return {"ocr_lines": line_rates, "ocr_pages": page_rates}


# -- summarizer ----------------------------------------------------------------------------------


def summarizer(device: str, precision: str) -> Summarizer:
    model = Summarizer(SummarizerSettings(device=device, precision=precision))
    model.load()
    model.warmup()
    return model


def picks(model: Summarizer, docs: Sequence[Article]) -> list[tuple[int, ...]]:
    out = []
    for s in model.summarize_batch([SummaryRequest(a.text) for a in docs]):
        out.append(() if isinstance(s, Exception) else tuple(x.index for x in s.sentences))
    return out


def summary_match(device: Summarizer, cpu: Summarizer, docs: list[Article]) -> dict[str, Any]:
    ours, ref = picks(device, docs), picks(cpu, docs)
    same = sum(a == b for a, b in zip(ours, ref, strict=True))
    assert device.encoder is not None and cpu.encoder is not None
    sentences = [s for a in docs for s in a.sentences]
    cosine = (device.encoder.encode(sentences) * cpu.encoder.encode(sentences)).sum(1)
    return {
        "articles": len(docs),
        "identical_picks": same,
        "share": round(same / len(docs), 3),
        "min_share": SUMMARY_MATCH_MIN,
        "sentences": len(sentences),
        "embedding_cosine_min": round(float(cosine.min()), 6),
        "embedding_cosine_mean": round(float(cosine.mean()), 6),
        "min_cosine": EMBEDDING_MIN_COSINE,
        "passed": same / len(docs) >= SUMMARY_MATCH_MIN
        and float(cosine.min()) >= EMBEDDING_MIN_COSINE,
    }


def summarizer_speed(model: Summarizer, docs: list[Article], cap_s: float) -> dict[str, Any]:
    return {str(b): rate(docs, b, lambda c: picks(model, c), cap_s, "articles") for b in BATCHES}


# -- HTTP ----------------------------------------------------------------------------------------


def multipart(data: bytes, filename: str = "page.png") -> tuple[bytes, str]:
    """A form with one file field ``file``: the body and its content type."""
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    )
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(url: str, body: bytes, content_type: str) -> None:
    request = urllib.request.Request(url, body, {"Content-Type": content_type}, method="POST")
    with urllib.request.urlopen(request, timeout=300) as r:
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}")


def clients(
    url: str, bodies: list[tuple[bytes, str]], concurrency: int, cap_s: float, unit: str
) -> dict[str, Any]:
    """``concurrency`` clients, each sending the next body when its answer came, until the
    bodies or ``cap_s`` seconds run out."""
    todo: Iterator[tuple[bytes, str]] = iter(bodies)
    latencies: list[float] = []
    started = time.perf_counter()

    failures: list[str] = []

    def client() -> None:
        for body, kind in todo:  # one shared iterator: each body is sent once
            t = time.perf_counter()
            try:
                post(url, body, kind)
            except (OSError, RuntimeError) as exc:  # HTTPError and URLError are OSErrors
                failures.append(repr(exc))
            else:
                latencies.append(time.perf_counter() - t)
            if time.perf_counter() - started > cap_s:
                return

    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(client) for _ in range(concurrency)]:
            f.result()
    seconds = time.perf_counter() - started
    if not latencies:
        raise RuntimeError(f"{url}: no request answered 200: {failures[:3]}")
    latencies.sort()
    return {
        "concurrency": concurrency,
        unit: len(latencies),
        f"{unit}_per_s": round(len(latencies) / seconds, 2),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p95_ms": round(1000 * latencies[math.ceil(0.95 * len(latencies)) - 1], 1),
        "failed": len(failures),
        "failures": sorted(set(failures))[:3],
    }


def serve_and_drive(
    name: str,
    env: dict[str, str],
    route: str,
    bodies: list[tuple[bytes, str]],
    cap_s: float,
    unit: str,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"gpu-{name}-") as tmp:
        server: LiveService = start_service(name, Path(tmp), env)
        try:
            url = server.url + route
            clients(url, bodies[:4], 2, cap_s, unit)  # warm-up
            one = clients(url, bodies, 1, cap_s, unit)
            many = clients(url, bodies, 16, cap_s, unit)
        finally:
            server.stop()
    return {"1": one, "16": many, "speedup": round(many[f"{unit}_per_s"] / one[f"{unit}_per_s"], 2)}


def png(img: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def http_figures(
    device: str, page_imgs: list[np.ndarray], docs: list[Article], cap_s: float
) -> dict[str, Any]:
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        page_bodies = [multipart(b) for b in pool.map(png, page_imgs)]
    doc_bodies = [(json.dumps({"text": a.text}).encode(), "application/json") for a in docs]
    # A slow machine must not turn queueing into 504s: throughput is measured here, not limits.
    wait = "600"

    def quiet(service: str) -> dict[str, str]:
        return {f"DOCSUM_{service}_LOG_LEVEL": "WARNING"}

    return {
        "ocr": serve_and_drive(
            "ocr",
            {"DOCSUM_OCR_DEVICE": device, "DOCSUM_OCR_REQUEST_TIMEOUT_S": wait, **quiet("OCR")},
            "/v1/ocr",
            page_bodies,
            cap_s,
            "pages",
        ),
        "summarizer": serve_and_drive(
            "summarizer",
            {
                "DOCSUM_SUMMARIZER_DEVICE": device,
                "DOCSUM_SUMMARIZER_REQUEST_TIMEOUT_S": wait,
                **quiet("SUMMARIZER"),
            },
            "/v1/summarize",
            doc_bodies,
            cap_s,
            "articles",
        ),
    }


# -- main ----------------------------------------------------------------------------------------


def describe(device: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    if device.startswith("cuda"):
        out |= {"gpu": torch.cuda.get_device_name(), "cuda": torch.version.cuda}
    return out


def run(
    device: str,
    precision: str,
    sizes: Sizes,
    cap_s: float,
    save: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Every phase in turn; ``save`` gets the report after each, so a run stopped part-way
    still leaves what it measured."""
    t0 = time.perf_counter()
    phases: dict[str, float] = {}
    lines = text_lines(max(sizes.lines, sizes.check_lines))
    page_set = pages(max(sizes.pages, sizes.http_pages, sizes.check_pages))
    docs = articles(max(sizes.articles, sizes.http_articles, sizes.check_articles))
    match: dict[str, Any] = {}
    report: dict[str, Any] = {
        "complete": False,
        "machine": describe(device),
        "precision": precision,
        "inputs": {
            "lines": sizes.lines,
            "pages": sizes.pages,
            "articles": sizes.articles,
            "article_words": round(statistics.mean(len(a.text.split()) for a in docs)),
            "made_by": "bench/gpu_inputs.py",
        },
        "max_seconds_per_figure": cap_s,
        "match": match,
        "phases_s": phases,
    }

    def lap(name: str) -> None:
        phases[name] = round(time.perf_counter() - t0 - sum(phases.values()), 1)
        report["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"gpu_bench: {name} ({phases[name]} s)", file=sys.stderr, flush=True)
        save(report)

    lap("inputs")
    cpu_ocr, ocr = ocr_engine("cpu", "fp32"), ocr_engine(device, precision)
    report["ocr_precision"] = ocr.recognizer.precision
    match |= ocr_match(ocr, cpu_ocr, lines[: sizes.check_lines], page_set[: sizes.check_pages])
    del cpu_ocr
    lap("ocr match")
    line_imgs = [x[0] for x in lines[: sizes.lines]]
    report |= ocr_speed(ocr, line_imgs, [x[0] for x in page_set[: sizes.pages]], cap_s)
    del ocr
    lap("ocr speed")
    cpu_sum, summ = summarizer("cpu", "fp32"), summarizer(device, precision)
    report["summarizer_precision"] = summ.encoder.precision if summ.encoder else None
    match["summaries"] = summary_match(summ, cpu_sum, docs[: sizes.check_articles])
    del cpu_sum
    lap("summary match")
    report["summarizer"] = summarizer_speed(summ, docs[: sizes.articles], cap_s)
    del summ
    lap("summarizer speed")
    if device.startswith("cuda"):
        report["machine"]["gpu_memory_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
        torch.cuda.empty_cache()
    report["http"] = http_figures(
        device, [x[0] for x in page_set[: sizes.http_pages]], docs[: sizes.http_articles], cap_s
    )
    match["passed"] = all(match[k]["passed"] for k in ("lines", "pages", "summaries"))
    report["complete"] = True
    lap("http")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    ap.add_argument("--seconds", type=float, default=None, help="cap per speed figure (s)")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out")) / "gpu.json")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    cap_s = args.seconds if args.seconds is not None else (3.0 if args.quick else 10.0)
    command = "bash bench/gpu.sh " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save(report: dict[str, Any]) -> None:
        part = args.out.with_suffix(".part")
        part.write_text(json.dumps({"command": command, **report}, indent=2) + "\n")
        part.replace(args.out)

    report = run(args.device, args.precision, QUICK if args.quick else FULL, cap_s, save)
    print(json.dumps(report["match"]), file=sys.stderr)
    print(f"gpu_bench: wrote {args.out}", file=sys.stderr)
    failed = sum(f["failed"] for svc in report["http"].values() for f in (svc["1"], svc["16"]))
    return 0 if report["match"]["passed"] and not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
