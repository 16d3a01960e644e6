"""RapidOCR (PP-OCRv4, ONNX Runtime) as a worker process for bench/ocr_bench.py.

Runs under .tools/rapidocr-venv's Python (scripts/install_rapidocr.sh), never the project's: it
imports nothing of docsum. JSON lines on stdin and stdout:

* at start it loads the models shipped in the wheel, reads one warm-up image and prints
  ``{"ready": true, "package": ..., "models": [...], "threads": n}``;
* each request ``{"mode": "rec" | "page", "items": [{"path": str, "crop": [x0, y0, x1, y1] |
  null}, ...]}`` is answered ``{"texts": [...], "errors": [...]}`` (one of each per item,
  ``""`` and ``null`` where all went well).

``rec`` reads each image (or crop) as one text line with the recognizer alone, the items of a
request batched as RapidOCR batches a page's lines (a crop much taller than wide is also read
turned, see :func:`recognize`); ``page`` runs the whole pipeline (detect,
orient, recognize) with the package's default settings and joins the boxes into lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rapidocr_onnxruntime
from rapidocr_onnxruntime import RapidOCR

#: RapidOCR's own rule (main.py, get_rotate_crop_image): a crop this much taller than wide is
#: a turned line.
TALL_RATIO = 1.5


class Images:
    """Decodes files (BGR, as RapidOCR reads them); keeps the last one, since receipt crops
    come grouped by file."""

    def __init__(self) -> None:
        self._path: str | None = None
        self._img: np.ndarray | None = None

    def get(self, path: str, crop: list[int] | None) -> np.ndarray:
        if path != self._path:
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f"cannot decode {path}")
            self._path, self._img = path, img
        assert self._img is not None
        if crop is None:
            return self._img
        x0, y0, x1, y1 = crop
        h, w = self._img.shape[:2]
        out = self._img[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
        if out.size == 0:
            raise ValueError(f"empty crop {crop} of {path}")
        return out


def page_text(result: list[Any] | None) -> str:
    """Boxes (top-to-bottom, then left-to-right, as RapidOCR sorts them) → lines of text: a box
    whose vertical centre lies within the previous box's height continues its line."""
    if not result:
        return ""
    lines: list[list[str]] = []
    prev: tuple[float, float] | None = None
    for box, text, _score in result:
        ys = [p[1] for p in box]
        top, bottom = min(ys), max(ys)
        centre = (top + bottom) / 2
        if prev is not None and prev[0] <= centre <= prev[1]:
            lines[-1].append(text)
        else:
            lines.append([text])
        prev = (top, bottom)
    return "\n".join(" ".join(parts) for parts in lines)


def recognize(engine: RapidOCR, crops: list[np.ndarray]) -> list[str]:
    """The recognizer on each crop; a crop much taller than wide (RapidOCR's own rule for a
    turned line) is read turned 90° both ways and the surer reading kept, as docsum reads one
    (its pipeline's 0°/180° classifier is not sure enough to turn such a line: 0.88 < 0.9)."""
    tall = [i for i, c in enumerate(crops) if c.shape[0] >= TALL_RATIO * c.shape[1]]
    variants = list(crops)
    variants += [np.rot90(crops[i], 1) for i in tall] + [np.rot90(crops[i], -1) for i in tall]
    readings, _ = engine.text_rec(variants)
    best = [(text, float(score)) for text, score in readings[: len(crops)]]
    for k, i in enumerate(tall):
        for text, score in (readings[len(crops) + k], readings[len(crops) + len(tall) + k]):
            if float(score) > best[i][1]:
                best[i] = (text, float(score))
    return [text for text, _ in best]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=-1, help="ONNX Runtime intra-op threads")
    args = ap.parse_args()
    engine = RapidOCR(intra_op_num_threads=args.threads)
    shipped = Path(rapidocr_onnxruntime.__file__).parent / "models"
    models = sorted(p.name for p in shipped.glob("*.onnx"))
    warm = np.full((48, 320, 3), 255, np.uint8)
    cv2.putText(warm, "Warm up 123", (8, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
    engine.text_rec([warm])
    engine(warm)
    ready = {
        "ready": True,
        "package": f"rapidocr-onnxruntime {version('rapidocr-onnxruntime')}",
        "onnxruntime": version("onnxruntime"),
        "models": models,
        "threads": args.threads,
    }
    print(json.dumps(ready), flush=True)
    images = Images()
    for raw in sys.stdin:
        request = json.loads(raw)
        items = request["items"]
        texts: list[str] = [""] * len(items)
        errors: list[str | None] = [None] * len(items)
        if request["mode"] == "rec":
            crops, where = [], []
            for i, item in enumerate(items):
                try:
                    crops.append(images.get(item["path"], item.get("crop")))
                    where.append(i)
                except Exception as exc:
                    errors[i] = repr(exc)
            for i, text in zip(where, recognize(engine, crops) if crops else [], strict=True):
                texts[i] = text
        else:
            for i, item in enumerate(items):
                try:
                    result, _ = engine(images.get(item["path"], item.get("crop")))
                    texts[i] = page_text(result)
                except Exception as exc:
                    errors[i] = repr(exc)
        print(json.dumps({"texts": texts, "errors": errors}, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
