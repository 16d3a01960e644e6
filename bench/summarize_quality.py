"""ROUGE of docsum and lead-k on the shared dev files (bench/RESULTS.md's quality table).

Usage: python -m bench.summarize_quality [--precision auto|int8|...] [--out FILE]
Reads ../shared/data/summarization; k is 3 for CNN/DM, 1 for XSum and SciTLDR, 6 for papers
(CL-SciSumm, ScisummNet: papers whose body quotes the abstract are skipped).
Beside each file's means: a 95 % bootstrap interval of docsum − lead-k over its documents
(paired, 2,000 resamples), which says how much a difference on a few dozen documents means.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from docsum.eval.summarize import evaluate
from docsum.summarizer.settings import SummarizerSettings
from docsum.summarizer.summarize import Summarizer

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "summarization"
SETS = [
    ("cnndm-dev.jsonl", 3),
    ("xsum-dev.jsonl", 1),
    ("scitldr-a-dev.jsonl", 1),
    ("clscisumm2018-train.jsonl", 6),
    ("scisummnet-dev.jsonl", 6),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=None, help="default: bench/results/summarize_quality.json")
    ap.add_argument("--precision", default="auto")
    args = ap.parse_args()
    suffix = "" if args.precision == "auto" else f"_{args.precision}"
    out = Path(args.out or f"bench/results/summarize_quality{suffix}.json")
    model = Summarizer(SummarizerSettings(precision=args.precision))
    model.load()
    rows = []
    for name, k in SETS:
        report = evaluate(DATA / name, k, model)
        rows.append(report)
        ours, lead = report["docsum"], report[f"lead-{k}"]
        gap = report[f"rouge1_minus_lead-{k}"]
        print(
            f"| {name} ({report['documents']}) | {k} | "
            f"{ours['rouge1']:.2f} / {ours['rouge2']:.2f} / {ours['rougeLsum']:.2f} | "
            f"{lead['rouge1']:.2f} / {lead['rouge2']:.2f} / {lead['rougeLsum']:.2f} | "
            f"{gap['mean']:+.2f} [{gap['ci95'][0]:+.2f}, {gap['ci95'][1]:+.2f}] |",
            flush=True,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
