"""OCR quality and speed beside two offline peers on the OCR dev sets (bench/RESULTS.md's figures).

Usage: python -m bench.ocr_bench [--out bench/results/ocr.json] [--skip-http]
                                 [--sets lines,pages,receipts] [--peers tesseract,rapidocr]

1. CER (rules of ../shared/README.md) of docsum, Tesseract 5.3 and RapidOCR on uw3-lines (248
   lines), oldbooks-pages (every 3rd page: 38) and the SROIE receipt line crops, each with its
   95 % bootstrap interval (lines or pages resampled) and the paired interval of docsum's gap
   to each peer, and each engine's throughput on this machine's cores:
   * docsum in-process and pipelined;
   * Tesseract (scripts/install_tesseract.sh) as 2 processes with ``OMP_THREAD_LIMIT=1``,
     ``--psm 7`` lines, ``--psm 3`` pages;
   * RapidOCR (PP-OCRv4 from the wheel, scripts/install_rapidocr.sh, its own venv) as one
     worker process (bench/rapidocr_worker.py) with one ONNX Runtime thread per core: the
     recognizer alone on the same line crops, the whole pipeline (detect, orient, recognize,
     the package's defaults) on pages.
2. A real OCR server on 127.0.0.1: pages/s for the 38 old-books pages sent one at a time,
   and with 16 concurrent single-page requests (the dynamic batcher at work).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from docsum.eval.ocr import (
    Kind,
    Sample,
    Score,
    _normalizer,
    load,
    load_engine,
    load_pages,
    read_docsum,
    read_tesseract,
    tesseract_binary,
)
from tests.support.services import start_service

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ocr"
SETS: dict[str, tuple[Path, int]] = {
    "lines": (DATA / "uw3-lines", 1),
    "pages": (DATA / "oldbooks-pages", 3),
    "receipts": (DATA / "sroie-receipts", 1),
}
RAPIDOCR_PYTHON = ROOT / ".tools" / "rapidocr-venv" / "bin" / "python"
RESAMPLES = 2000


# -- scoring ------------------------------------------------------------------------------------


@dataclass
class ItemScore(Score):
    """:class:`Score` that also keeps each item's (edits, reference characters)."""

    items_ec: list[tuple[int, int]] = field(default_factory=list)

    def add(self, sample: Sample, ref: str, hyp: str) -> None:
        before = self.edits
        super().add(sample, ref, hyp)
        self.items_ec.append((self.edits - before, len(ref)))


def bootstrap_cer(
    scores: dict[str, ItemScore], resamples: int = RESAMPLES, seed: int = 0
) -> dict[str, np.ndarray]:
    """CER (%) of each engine on ``resamples`` resamples of the items, the same resamples for
    every engine (so gaps are paired)."""
    first = next(iter(scores.values()))
    n = len(first.items_ec)
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    out = {}
    for name, s in scores.items():
        ec = np.asarray(s.items_ec, dtype=np.int64)
        assert len(ec) == n, f"{name} scored {len(ec)} items of {n}"
        out[name] = 100.0 * ec[idx, 0].sum(1) / np.maximum(1, ec[idx, 1].sum(1))
    return out


def interval(values: np.ndarray) -> list[float]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [round(float(lo), 3), round(float(hi), 3)]


# -- RapidOCR, in its own venv ------------------------------------------------------------------


class RapidOCRWorker:
    """bench/rapidocr_worker.py under .tools/rapidocr-venv's Python, JSON lines both ways."""

    def __init__(self, threads: int) -> None:
        self.proc = subprocess.Popen(
            [RAPIDOCR_PYTHON, ROOT / "bench" / "rapidocr_worker.py", "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.info = self._answer()
        if not self.info.get("ready"):
            raise RuntimeError(f"RapidOCR worker did not start: {self.info}")

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"RapidOCR worker exited ({self.proc.wait()})")
        return dict(json.loads(line))

    def ask(self, mode: str, samples: Sequence[Sample]) -> list[str]:
        assert self.proc.stdin is not None
        items = [{"path": str(s.path), "crop": list(s.crop) if s.crop else None} for s in samples]
        self.proc.stdin.write(json.dumps({"mode": mode, "items": items}) + "\n")
        self.proc.stdin.flush()
        answer = self._answer()
        for sample, error in zip(samples, answer["errors"], strict=True):
            if error:
                print(f"rapidocr: {sample.id}: {error}", file=sys.stderr)
        return list(answer["texts"])

    def read(self, kind: Kind, samples: Sequence[Sample]) -> Iterator[tuple[Sample, str]]:
        """Lines in requests of 64 (batched inside the worker), pages one at a time."""
        mode, chunk = ("page", 1) if kind == "pages" else ("rec", 64)
        for i in range(0, len(samples), chunk):
            part = samples[i : i + chunk]
            yield from zip(part, self.ask(mode, part), strict=True)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(60)


def install_rapidocr() -> bool:
    """scripts/install_rapidocr.sh (a second or so once installed); whether RapidOCR is there."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "install_rapidocr.sh")], check=False)
    return done.returncode == 0 and RAPIDOCR_PYTHON.is_file()


# -- one set, three engines ---------------------------------------------------------------------

Reader = Callable[[Kind, Sequence[Sample]], Iterator[tuple[Sample, str]]]


def score_engine(kind: Kind, samples: Sequence[Sample], read: Reader, label: str) -> ItemScore:
    norm = _normalizer(kind)
    score = ItemScore()
    started = time.perf_counter()
    for n, (sample, text) in enumerate(read(kind, samples), 1):
        score.add(sample, norm(sample.reference), norm(text))
        if n % 100 == 0 or n == len(samples):
            print(f"{kind}: {label} {n}/{len(samples)}", file=sys.stderr)
    score.seconds = time.perf_counter() - started
    if score.items != len(samples):
        raise RuntimeError(f"{label} read {score.items} of {len(samples)} {kind}")
    return score


def evaluate_set(kind: Kind, readers: dict[str, Reader]) -> dict[str, Any]:
    root, every = SETS[kind]
    samples = load(kind, root, every)
    if not samples:
        raise FileNotFoundError(f"no {kind} samples under {root}")
    unit = "pages" if kind == "pages" else "lines"
    scores = {name: score_engine(kind, samples, read, name) for name, read in readers.items()}
    boot = bootstrap_cer(scores)
    result: dict[str, Any] = {"set": root.name, "kind": kind, "samples": len(samples)}
    for name, s in scores.items():
        result[name] = {**s.summary(unit), "cer_ci95": interval(boot[name])}
    gaps = {}
    for peer in (p for p in scores if p != "docsum"):
        gap = boot["docsum"] - boot[peer]
        point = scores["docsum"].cer - scores[peer].cer
        gaps[f"docsum_minus_{peer}"] = {"cer": round(point, 3), "ci95": interval(gap)}
    result["gaps"] = gaps
    return result


# -- HTTP ---------------------------------------------------------------------------------------


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
    with tempfile.TemporaryDirectory(prefix="ocr-bench-") as tmp:
        # A busy machine must not turn queueing into 504s: throughput is measured, not limits.
        env = {"DOCSUM_OCR_LOG_LEVEL": "WARNING", "DOCSUM_OCR_REQUEST_TIMEOUT_S": "600"}
        server = start_service("ocr", Path(tmp), env)
        try:
            return _rates(server.url, pages)
        finally:
            server.stop()


def _rates(url: str, pages: list[bytes]) -> dict[str, object]:
    asyncio.run(_throughput(url, pages[:4], 2))  # warm the allocator and caches
    one = asyncio.run(_throughput(url, pages, 1))
    many = asyncio.run(_throughput(url, pages, 16))
    return {
        "sequential": one,
        "concurrent_16": many,
        "speedup": round(many["pages_per_s"] / one["pages_per_s"], 2),
    }


# -- main ---------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ocr.json")
    ap.add_argument("--sets", default="lines,pages,receipts")
    ap.add_argument("--peers", default="tesseract,rapidocr")
    ap.add_argument("--skip-http", action="store_true")
    args = ap.parse_args()
    peers = set(filter(None, args.peers.split(",")))
    threads = os.cpu_count() or 1
    report: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {threads} cores",
        "command": "python -m bench.ocr_bench",
        "bootstrap": {"resamples": RESAMPLES, "seed": 0, "interval": "percentile 2.5-97.5"},
        "peers": {},
        # Speeds are only comparable within a run, and only on a machine not busy with others.
        "load_average_1min": {"before": round(os.getloadavg()[0], 2)},
    }
    engine = load_engine()
    readers: dict[str, Reader] = {"docsum": lambda kind, s: read_docsum(engine, kind, s)}
    binary = tesseract_binary() if "tesseract" in peers else None
    if "tesseract" in peers and not binary:
        raise SystemExit("Tesseract not found: run `make tesseract`")
    if binary:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
        report["peers"]["tesseract"] = {"version": version.stdout.splitlines()[0]}
        readers["tesseract"] = lambda kind, s: read_tesseract(kind, s, binary)
    worker = None
    if "rapidocr" in peers:
        if not install_rapidocr():
            raise SystemExit("RapidOCR could not be installed: see scripts/install_rapidocr.sh")
        worker = RapidOCRWorker(threads)
        report["peers"]["rapidocr"] = {k: v for k, v in worker.info.items() if k != "ready"}
        readers["rapidocr"] = worker.read
    args.out.parent.mkdir(parents=True, exist_ok=True)

    partial = args.out.with_name(f"{args.out.stem}.partial.json")

    def save(path: Path = partial) -> None:  # after each part: a failure keeps what was measured
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

    try:
        for name in filter(None, args.sets.split(",")):  # --sets '' : HTTP figures only
            result = evaluate_set(name, readers)  # type: ignore[arg-type]
            report[name] = result
            save()
            print(
                f"{name}: "
                + "  ".join(
                    f"{e} CER {result[e]['cer']} % {result[e]['cer_ci95']} "
                    f"({result[e]['seconds']} s)"
                    for e in readers
                ),
                file=sys.stderr,
            )
    finally:
        if worker:
            worker.close()
    if not args.skip_http:
        report["http"] = http_figures()
        print(f"http: {report['http']}", file=sys.stderr)
    report["load_average_1min"]["after"] = round(os.getloadavg()[0], 2)
    save(args.out)
    partial.unlink(missing_ok=True)
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
