"""Issue 21's cost rows against a local stack with the default limits: what each hostile
request gets, how fast, and each service's memory (its own ``/metrics``) before, at the peak
and after.

    python -m bench.hostile [--out bench/results/hostile.json] [--rows NAME ...]

Starts summarizer, OCR and gateway on free ports (OCR and gateway with their default limits;
no rate limit), plus a second gateway over the same services whose deadline is 5 s. Then, in
turn: rows 2–6 and 8 of issue 21 (``tests/reliability/cost_rows.py``); "small beside big":
another caller's small OCR requests while the OCR service reads a multi-page TIFF of
rectangles (thousands of "text lines"); and row 7: how long each service takes to come back
within 20 % of its warm memory once they are done. ``--rows`` takes only the rows named
(row 7 only after all of them) and updates them in the results file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.hostile import costly
from tests.ocr.busy import rectangles_tiff
from tests.reliability import cost_rows as rows
from tests.support.documents import ARTICLE, make_pdf, page_image, png_bytes
from tests.support.services import ROOT, start_gateway, start_service
from tests.support.stack import NO_RATE_LIMIT, SUMMARIZER_ENV, stable_backends

AUTH = rows.AUTH
OCR_ENV = {"DOCSUM_OCR_BATCH__MAX_WAIT_MS": "20"}


def warm_up(gateway_url: str) -> None:
    """A few ordinary requests on every path, so the warm memory is the working set's."""
    page = png_bytes(page_image()[0])
    pdf = make_pdf([ARTICLE, ARTICLE[:3]])
    with httpx.Client(timeout=120, headers=AUTH) as client:
        for _ in range(3):
            r = client.post(f"{gateway_url}/api/v1/summarize", json={"text": " ".join(ARTICLE)})
            r.raise_for_status()
            r = client.post(
                f"{gateway_url}/api/v1/ocr", files={"file": ("p.png", page, "image/png")}
            )
            r.raise_for_status()
            r = client.post(
                f"{gateway_url}/api/v1/documents:summarize",
                files={"file": ("d.pdf", pdf, "application/pdf")},
            )
            r.raise_for_status()


def recognizer_counts(ocr: Any) -> tuple[float, float]:
    """The OCR service's recognizer calls so far, and the line crops they held."""
    text = httpx.get(f"{ocr.url}/metrics", timeout=10).text
    return (
        rows.metric(text, "docsum_inference_batch_size_count", model="crnn"),
        rows.metric(text, "docsum_inference_batch_size_sum", model="crnn"),
    )


def small_beside_big(ocr: Any, tiff: bytes) -> dict[str, Any]:
    """A multi-page TIFF of rectangles sent to the OCR service; once its lines are being read,
    another caller's one-line OCR (line mode) and one-page OCR (page mode), each timed."""
    url = f"{ocr.url}/v1/ocr"
    text_page = png_bytes(page_image()[0])
    batches = rows._batches(ocr)
    big = rows._in_thread(
        lambda: rows._timed(
            lambda: httpx.post(url, files={"file": ("big.tiff", tiff, "image/tiff")}, timeout=600)
        )
    )
    started = time.perf_counter()
    busy = rows.ocr_busy(ocr, batches)
    time.sleep(1.0)  # well into the big one's lines
    calls, crops = recognizer_counts(ocr)
    line, line_s = rows.small_ocr(url)
    line_done = time.perf_counter() - started
    calls_after, crops_after = recognizer_counts(ocr)
    page = rows._timed(
        lambda: httpx.post(url, files={"file": ("p.png", text_page, "image/png")}, timeout=600)
    )
    page_done = time.perf_counter() - started
    big_r, big_s = big()
    answered = sum(len(p["lines"]) for p in big_r.json()["pages"]) if big_r.is_success else None
    return {
        "big": {**rows._answer(big_r, big_s), "bytes": len(tiff), "lines_answered": answered},
        "ocr_at_work": busy,
        "small_line_during": {
            **rows._answer(line, line_s),
            "recognizer_calls_meanwhile": calls_after - calls,
            "line_crops_read_meanwhile": crops_after - crops,
            "done_before_big": line_done < big_s,
        },
        "small_page_during": {**rows._answer(*page), "done_before_big": page_done < big_s},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hostile.json")
    parser.add_argument("--rows", nargs="+", metavar="NAME", help="only these rows")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="docsum-hostile-"))
    summarizer = start_service("summarizer", tmp, SUMMARIZER_ENV)
    ocr = start_service("ocr", tmp, OCR_ENV)
    backends = stable_backends(ocr, summarizer)
    gateway = start_gateway(tmp / "gateway", backends, NO_RATE_LIMIT)
    hasty = start_gateway(
        tmp / "hasty", backends, {**NO_RATE_LIMIT, "DOCSUM_GATEWAY_REQUEST_TIMEOUT_S": "5"}
    )
    services = {"summarizer": summarizer, "ocr": ocr, "gateway": gateway}
    out: dict[str, Any] = {"command": "python -m bench.hostile", "rows": {}}
    if args.rows and args.out.exists():
        out = json.loads(args.out.read_text())
    try:
        warm_up(gateway.url)
        time.sleep(5)  # the idle trim after the warm-up
        warm = rows.memory(services)
        if not args.rows:
            out["warm_mb"] = {k: round(v, 1) for k, v in warm.items()}
        scenarios = [
            ("2", lambda: rows.row2_tiff_bomb(ocr, gateway, costly.group4_tiff())),
            ("3 hang-up", lambda: rows.row3_hang_up(gateway, ocr, costly.rectangles_pdf())),
            ("3 deadline", lambda: rows.row3_deadline(hasty, ocr, costly.rectangles_pdf())),
            ("4", lambda: rows.row4_text_layer(gateway, costly.big_text_layer_pdf())),
            ("5", lambda: rows.row5_many_keys(gateway, costly.many_keys_json())),
            ("6", lambda: rows.row6_big_bodies(gateway)),
            ("8", lambda: rows.row8_lying_page_count(gateway, costly.lying_count_pdf())),
            ("small beside big", lambda: small_beside_big(ocr, rectangles_tiff(pages=3))),
        ]
        for name, run in scenarios:
            if args.rows and name not in args.rows:
                continue
            sampler = rows.Sampler(services)
            load = os.getloadavg()[0]
            with sampler.watching():
                figures = run()
            out["rows"][name] = {
                "result": figures,
                "memory": sampler.figures(),
                "load_1m": [round(load, 1), round(os.getloadavg()[0], 1)],  # before, after
            }
            print(name, json.dumps(out["rows"][name]), flush=True)
        if not args.rows or "7" in args.rows:
            out["rows"]["7"] = {"result": rows.row7_memory_back(services, warm)}
            print("7", json.dumps(out["rows"]["7"]), flush=True)
    finally:
        for svc in (hasty, gateway, ocr, summarizer):
            svc.stop()
    out["machine"] = {
        "cpu": platform.processor() or platform.machine(),
        "note": "2-core VM shared by the services, the client and other work",
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
