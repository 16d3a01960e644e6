"""Page analysis on the dev sets: end-to-end page CER (old-books), line-box recall (SROIE),
and analysis speed. A development script, not a test: the figures behind the page-analysis
records of docs/decisions.md.

    python bench/ocr_layout_eval.py pages [--every 3] [--show DIR]
    python bench/ocr_layout_eval.py receipts [--split-gap 4.0] [--show DIR]
    python bench/ocr_layout_eval.py speed [--repeat 3]

Page CER follows ../shared/README.md (NFKC, "-\\n" before a lower-case letter joined,
whitespace runs → one space; our page text = lines joined with "\\n"). The recognizer is the
shipped CRNN (services/ocr/weights/crnn.pt) on one thread; its CER moves as training goes on,
so compare layouts under the same weights.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import re
import statistics
import time
import unicodedata
from pathlib import Path

import cv2
import numpy as np

from docsum.ocr.layout import LayoutConfig, PageLayout, analyze_page

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ocr"
WEIGHTS = ROOT / "services" / "ocr" / "weights" / "crnn.pt"
A4_300DPI = (2480, 3508)


def _read(path: Path) -> np.ndarray:
    page = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if page is None:
        raise SystemExit(f"cannot read {path}")
    return page


def normalize_page(text: str) -> str:
    text = re.sub(r"-\n(?=[a-z])", "", unicodedata.normalize("NFKC", text))
    return re.sub(r"\s+", " ", text).strip()


def draw(
    page: np.ndarray,
    layout: PageLayout,
    out: Path,
    boxes: list[tuple[int, int, int, int]] | None = None,
) -> None:
    vis = cv2.cvtColor(page, cv2.COLOR_GRAY2BGR)
    for b in boxes or []:
        cv2.rectangle(vis, b[:2], b[2:], (0, 180, 0), 2)
    for i, line in enumerate(layout.lines):
        x0, y0, x1, y1 = line.box
        cv2.rectangle(vis, (x0, y0), (x1, y1), (0, 0, 255), 2)
        cv2.putText(
            vis, str(i), (max(0, x0 - 40), y0 + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 0, 0), 2
        )
    s = min(1.0, 1400 / page.shape[0])
    cv2.imwrite(str(out), cv2.resize(vis, None, fx=s, fy=s, interpolation=cv2.INTER_AREA))


def pages(args: argparse.Namespace, config: LayoutConfig) -> None:
    import torch
    from rapidfuzz.distance import Levenshtein

    from docsum.ocr.recognize import Recognizer

    torch.set_num_threads(1)
    rec = Recognizer(Path(args.weights))
    rec.load()
    root = DATA / "oldbooks-pages"
    files = sorted((root / "images").glob("*.png"))[:: args.every]
    edits = chars = 0
    t_layout = 0.0
    rows = []
    for f in files:
        page = _read(f)
        t = time.perf_counter()
        layout = analyze_page(page, config)
        t_layout += time.perf_counter() - t
        texts = [
            r.text if not isinstance(r, Exception) else ""
            for r in rec.recognize([ln.image for ln in layout.lines])
        ]
        hyp = normalize_page("\n".join(texts))
        ref = normalize_page((root / "groundtruth" / f"{f.stem}.txt").read_text(encoding="utf-8"))
        e = Levenshtein.distance(hyp, ref)
        edits += e
        chars += len(ref)
        rows.append((100 * e / max(1, len(ref)), f.stem, len(layout.lines), layout.skew_deg))
        if args.show:
            draw(page, layout, Path(args.show) / f"{f.stem}.png")
    for cer, name, n, skew in sorted(rows, reverse=True)[:10]:
        print(f"  {name}: CER {cer:5.2f} %  lines {n:3d}  skew {skew:+.2f}")
    print(
        f"pages {len(files)}  CER {100 * edits / chars:.2f} %  ({edits} edits / {chars} chars)  "
        f"weights {rec.version}  layout {1000 * t_layout / len(files):.0f} ms/page"
    )


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes a [N, 4] and b [M, 4]."""
    ix = np.clip(
        np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    iy = np.clip(
        np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None
    )
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1)


def match(truth: np.ndarray, found: np.ndarray, thr: float = 0.5) -> int:
    """One-to-one greedy matches at IoU >= thr."""
    if len(truth) == 0 or len(found) == 0:
        return 0
    iou = _iou(truth.astype(np.float64), found.astype(np.float64))
    n = 0
    while True:
        k = int(np.argmax(iou))
        i, j = divmod(k, iou.shape[1])
        if iou[i, j] < thr:
            return n
        n += 1
        iou[i, :] = 0
        iou[:, j] = 0


def receipts(args: argparse.Namespace, config: LayoutConfig) -> None:
    root = DATA / "sroie-receipts"
    tp = n_true = n_found = 0
    times = []
    for f in sorted((root / "img").glob("*.jpg")):
        page = _read(f)
        truth = []
        with open(root / "box" / f"{f.stem}.csv", encoding="utf-8", errors="replace") as fh:
            for row in csv.reader(fh):
                if len(row) < 8:
                    continue
                xy = [int(v) for v in row[:8]]
                truth.append((min(xy[0::2]), min(xy[1::2]), max(xy[0::2]), max(xy[1::2])))
        t = time.perf_counter()
        layout = analyze_page(page, config)
        times.append(time.perf_counter() - t)
        found = np.array([ln.box for ln in layout.lines]).reshape(-1, 4)
        m = match(np.array(truth), found)
        tp, n_true, n_found = tp + m, n_true + len(truth), n_found + len(found)
        print(f"  {f.stem}: {m}/{len(truth)} true boxes found, {len(found)} lines")
        if args.show:
            draw(page, layout, Path(args.show) / f"r{f.stem}.png", truth)
    recall, precision = 100 * tp / n_true, 100 * tp / max(1, n_found)
    print(
        f"receipts {len(times)}  recall@0.5 {recall:.1f} %  precision@0.5 {precision:.1f} %  "
        f"layout {1000 * statistics.mean(times):.0f} ms/page"
    )


def speed(args: argparse.Namespace, config: LayoutConfig) -> None:
    """Analysis time per page on one thread: the best of ``--repeat`` runs, as CPU time of
    the thread (steady on a busy machine) and as wall time."""
    cv2.setNumThreads(1)
    files = sorted((DATA / "oldbooks-pages" / "images").glob("*.png"))[:: args.every]
    rows: dict[str, list[tuple[float, float]]] = {"native": [], "a4": []}
    for f in files:
        page = _read(f)
        big = cv2.resize(page, A4_300DPI, interpolation=cv2.INTER_LINEAR)
        for name, src in (("native", page), ("a4", big)):
            rows[name].append(min(_timed(src, config) for _ in range(args.repeat)))
    for name, label in (("native", "native sizes"), ("a4", f"resized to A4 300 dpi {A4_300DPI}")):
        cpu = [c for c, _ in rows[name]]
        wall = [w for _, w in rows[name]]
        print(
            f"{label}: CPU {1000 * statistics.mean(cpu):.0f} ms/page (median "
            f"{1000 * statistics.median(cpu):.0f}, max {1000 * max(cpu):.0f}); wall "
            f"{1000 * statistics.mean(wall):.0f} ms/page"
        )


def _timed(page: np.ndarray, config: LayoutConfig) -> tuple[float, float]:
    c, t = time.thread_time(), time.perf_counter()
    analyze_page(page, config)
    return time.thread_time() - c, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("what", choices=["pages", "receipts", "speed"])
    p.add_argument("--every", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--show", help="folder for pictures of the boxes found")
    p.add_argument(
        "--weights", default=str(WEIGHTS), help="recognizer checkpoint (pin one to compare layouts)"
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="a LayoutConfig field"
    )
    args = p.parse_args()
    fields = {f.name: f.type for f in dataclasses.fields(LayoutConfig)}
    overrides = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        overrides[k] = int(v) if fields[k] in (int, "int") else float(v)
    config = LayoutConfig(**overrides)
    if args.show:
        Path(args.show).mkdir(parents=True, exist_ok=True)
    {"pages": pages, "receipts": receipts, "speed": speed}[args.what](args, config)


if __name__ == "__main__":
    main()
