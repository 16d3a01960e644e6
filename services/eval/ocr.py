"""CER of docsum's OCR — and of Tesseract, run beside it on the same files — on the dev sets.

Scoring follows ../shared/README.md so figures compare:

* CER = total Levenshtein edits / total reference characters, in percent.
* Lines: NFKC, whitespace runs → one space, strip.
* Pages: NFKC, ``-\\n`` before a lower-case letter joined (words hyphenated across lines),
  then whitespace runs → one space, strip.
* Receipts (SROIE): each box cropped (axis-aligned bounding rectangle of its 4 corners, 2 px
  margin) and read as a line; compared upper-cased.

Tesseract 5.3 runs as ../shared/README.md prescribes: ``--psm 7`` for lines, ``--psm 3`` for pages,
two processes with ``OMP_THREAD_LIMIT=1``. Both engines' speed is wall time over the set.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rapidfuzz.distance import Levenshtein

log = logging.getLogger(__name__)

Kind = Literal["lines", "pages", "receipts"]
REPO_ROOT = Path(__file__).resolve().parents[2]
_SPACES = re.compile(r"\s+")
_HYPHEN_BREAK = re.compile(r"-\n(?=[a-z])")


def normalize_line(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def normalize_page(text: str) -> str:
    text = _HYPHEN_BREAK.sub("", unicodedata.normalize("NFKC", text))
    return _SPACES.sub(" ", text).strip()


@dataclass(frozen=True)
class Sample:
    """One thing to read: an image file (or a crop of one) and its reference text."""

    id: str
    path: Path
    reference: str
    #: x0, y0, x1, y1 to crop before reading (receipts); None reads the whole image.
    crop: tuple[int, int, int, int] | None = None


@dataclass
class Score:
    edits: int = 0
    chars: int = 0
    items: int = 0
    seconds: float = 0.0
    worst: list[tuple[float, str, str, str]] = field(default_factory=list)

    @property
    def cer(self) -> float:
        return 100.0 * self.edits / max(1, self.chars)

    def add(self, sample: Sample, ref: str, hyp: str) -> None:
        e = Levenshtein.distance(hyp, ref)
        self.edits += e
        self.chars += len(ref)
        self.items += 1
        self.worst.append((e / max(1, len(ref)), sample.id, ref[:80], hyp[:80]))

    def summary(self, unit: str) -> dict[str, Any]:
        self.worst.sort(reverse=True)
        return {
            "cer": round(self.cer, 3),
            "edits": self.edits,
            "chars": self.chars,
            unit: self.items,
            "seconds": round(self.seconds, 2),
            f"{unit}_per_s": round(self.items / self.seconds, 2) if self.seconds else None,
            "worst": [
                {"id": i, "cer": round(100 * c, 1), "reference": r, "ours": h}
                for c, i, r, h in self.worst[:5]
            ],
        }


# -- data sets ---------------------------------------------------------------------------------


def load_lines(root: Path) -> list[Sample]:
    """uw3-lines: ``<page>/<line>.bin.png`` + ``<page>/<line>.gt.txt``."""
    out = []
    for img in sorted(root.glob("*/*.bin.png")):
        gt = img.with_name(img.name.replace(".bin.png", ".gt.txt"))
        if gt.is_file():
            out.append(Sample(f"{img.parent.name}/{img.name}", img, gt.read_text("utf-8")))
    return out


def load_pages(root: Path, every: int = 1) -> list[Sample]:
    """oldbooks-pages: ``images/<id>.png`` + ``groundtruth/<id>.txt``; every n-th page."""
    out = []
    for img in sorted((root / "images").glob("*.png"))[::every]:
        gt = root / "groundtruth" / f"{img.stem}.txt"
        if gt.is_file():
            out.append(Sample(img.stem, img, gt.read_text("utf-8")))
    return out


def load_receipts(root: Path, margin: int = 2) -> list[Sample]:
    """sroie-receipts: ``img/<id>.jpg`` + ``box/<id>.csv`` (8 corner coordinates, transcript)."""
    out = []
    for img in sorted((root / "img").glob("*.jpg")):
        box_file = root / "box" / f"{img.stem}.csv"
        if not box_file.is_file():
            continue
        with box_file.open(encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh):
                parts = line.rstrip("\n").split(",", 8)
                if len(parts) < 9 or not parts[8].strip():
                    continue
                xs = [int(v) for v in parts[0:8:2]]
                ys = [int(v) for v in parts[1:8:2]]
                box = (min(xs) - margin, min(ys) - margin, max(xs) + margin, max(ys) + margin)
                out.append(Sample(f"{img.stem}#{n}", img, parts[8], box))
    return out


def load(kind: Kind, root: Path, every: int = 1) -> list[Sample]:
    if kind == "lines":
        return load_lines(root)
    if kind == "pages":
        return load_pages(root, every)
    return load_receipts(root)


def _normalizer(kind: Kind) -> Callable[[str], str]:
    if kind == "pages":
        return normalize_page
    if kind == "receipts":
        return lambda t: normalize_line(t).upper()
    return normalize_line


# -- readers ---------------------------------------------------------------------------------


def _image(sample: Sample, cache: dict[Path, np.ndarray]) -> np.ndarray:
    from ..ocr.intake import decode_pages

    if sample.path not in cache:
        cache.clear()  # receipts come grouped by file: keep one decoded image
        cache[sample.path] = decode_pages(sample.path.read_bytes())[0]
    img = cache[sample.path]
    if sample.crop is None:
        return img
    x0, y0, x1, y1 = sample.crop
    h, w = img.shape
    return img[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]


def load_engine() -> Any:
    from ..ocr.engine import OCREngine
    from ..ocr.settings import OCRSettings

    engine = OCREngine(OCRSettings())
    engine.load()
    engine.warmup()
    return engine


def read_docsum(
    engine: Any,
    kind: Kind,
    samples: Sequence[Sample],
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[Sample, str]]:
    """Our OCR, in-process and pipelined (see :meth:`OCREngine.read_stream`)."""
    from ..ocr.engine import document_text

    cache: dict[Path, np.ndarray] = {}
    mode = "page" if kind == "pages" else "line"
    chunk = 4 if kind == "pages" else 64  # about 150-250 lines per recognizer call either way
    for n, (sample, pages) in enumerate(
        engine.read_stream(samples, lambda s: [_image(s, cache)], mode, chunk), 1
    ):
        if isinstance(pages, Exception):
            log.warning("could not read", extra={"id": sample.id, "error": str(pages)})
            yield sample, ""
        else:
            yield sample, document_text(pages)
        if progress and (n % 25 == 0 or n == len(samples)):
            progress(n)


def tesseract_binary() -> str | None:
    local = REPO_ROOT / ".tools" / "tesseract" / "bin" / "tesseract"
    return str(local) if local.is_file() else shutil.which("tesseract")


def read_tesseract(
    kind: Kind, samples: Sequence[Sample], binary: str, processes: int = 2
) -> Iterator[tuple[Sample, str]]:
    """Tesseract as a peer: ``processes`` at once, one thread each."""
    psm = "3" if kind == "pages" else "7"
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    cache: dict[Path, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:

        def one(sample: Sample) -> tuple[Sample, str]:
            out = subprocess.run(
                [binary, str(sample.path), "stdout", "--psm", psm, "-l", "eng"],
                capture_output=True,
                env=env,
                check=False,
                timeout=300,
            )
            return sample, out.stdout.decode("utf-8", "replace")

        jobs = list(samples)
        if kind == "receipts":  # crops are written first, so the timing is Tesseract's alone
            import cv2

            for n, s in enumerate(samples):
                path = Path(tmp) / f"{n}.png"
                cv2.imwrite(str(path), _image(s, cache))
                jobs[n] = Sample(s.id, path, s.reference)
        with ThreadPoolExecutor(processes) as pool:
            yield from pool.map(one, jobs)


def evaluate(
    kind: Kind,
    root: Path,
    *,
    every: int = 1,
    limit: int = 0,
    tesseract: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """CER and speed of docsum (and Tesseract if installed) on one dev set."""
    samples = load(kind, root, every)
    if limit:
        samples = samples[:limit]
    if not samples:
        raise FileNotFoundError(f"no {kind} samples under {root}")
    norm = _normalizer(kind)
    unit = {"lines": "lines", "pages": "pages", "receipts": "lines"}[kind]
    result: dict[str, Any] = {"set": root.name, "kind": kind, "samples": len(samples)}
    engine = load_engine()
    ours = Score()
    started = time.perf_counter()
    for sample, text in read_docsum(
        engine,
        kind,
        samples,
        progress=lambda n: progress("docsum", n, len(samples)) if progress else None,
    ):
        ours.add(sample, norm(sample.reference), norm(text))
    ours.seconds = time.perf_counter() - started
    result["docsum"] = ours.summary(unit)
    binary = tesseract_binary() if tesseract else None
    if binary:
        peer = Score()
        started = time.perf_counter()
        for i, (sample, text) in enumerate(read_tesseract(kind, samples, binary), 1):
            peer.add(sample, norm(sample.reference), norm(text))
            if progress and (i % 25 == 0 or i == len(samples)):
                progress("tesseract", i, len(samples))
        peer.seconds = time.perf_counter() - started
        result["tesseract"] = peer.summary(unit)
    return result
