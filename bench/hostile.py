"""Issue 21's cost rows against a local stack with the default limits: what each hostile
request gets, how fast, and each service's memory (its own ``/metrics``) before, at the peak
and after.

    python -m bench.hostile [--out bench/results/hostile.json]

Starts summarizer, OCR and gateway on free ports (OCR and gateway with their default limits;
no rate limit), plus a second gateway over the same services whose deadline is 5 s. Then, in
turn: rows 2–6 and 8 of issue 21 (``tests/reliability/cost_rows.py``), and row 7: how long
each service takes to come back within 20 % of its warm memory once they are done.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.hostile import costly
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hostile.json")
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
    try:
        warm_up(gateway.url)
        time.sleep(5)  # the idle trim after the warm-up
        warm = rows.memory(services)
        out["warm_mb"] = {k: round(v, 1) for k, v in warm.items()}
        scenarios = [
            ("2", lambda: rows.row2_tiff_bomb(ocr, gateway, costly.group4_tiff())),
            ("3 hang-up", lambda: rows.row3_hang_up(gateway, ocr, costly.rectangles_pdf())),
            ("3 deadline", lambda: rows.row3_deadline(hasty, ocr, costly.rectangles_pdf())),
            ("4", lambda: rows.row4_text_layer(gateway, costly.big_text_layer_pdf())),
            ("5", lambda: rows.row5_many_keys(gateway, costly.many_keys_json())),
            ("6", lambda: rows.row6_big_bodies(gateway)),
            ("8", lambda: rows.row8_lying_page_count(gateway, costly.lying_count_pdf())),
        ]
        for name, run in scenarios:
            sampler = rows.Sampler(services)
            with sampler.watching():
                figures = run()
            out["rows"][name] = {"result": figures, "memory": sampler.figures()}
            print(name, json.dumps(out["rows"][name]), flush=True)
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
