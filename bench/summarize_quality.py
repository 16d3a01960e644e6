"""ROUGE of docsum and lead-k on the shared dev files (the README's quality table).

Usage: python bench/summarize_quality.py [--out bench/results/summarize_quality.json]
Reads ../shared/data/summarization; k is 3 for CNN/DM, 1 for XSum and SciTLDR, 6 for papers.
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
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench/results/summarize_quality.json")
    args = ap.parse_args()
    model = Summarizer(SummarizerSettings())
    model.load()
    rows = []
    for name, k in SETS:
        report = evaluate(DATA / name, k, model)
        rows.append(report)
        ours, lead = report["docsum"], report[f"lead-{k}"]
        print(
            f"| {name} ({report['documents']}) | {k} | "
            f"{ours['rouge1']:.2f} / {ours['rouge2']:.2f} / {ours['rougeLsum']:.2f} | "
            f"{lead['rouge1']:.2f} / {lead['rouge2']:.2f} / {lead['rougeLsum']:.2f} |",
            flush=True,
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
