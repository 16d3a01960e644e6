"""ROUGE of docsum's summaries and of lead-k on the dev files' formats.

Scoring follows ../shared/README.md so figures compare: Google's rouge-score, F1 × 100,
stemming on, ROUGE-1, ROUGE-2 and ROUGE-Lsum over newline-separated sentences, the best over
references where a document has several. Lead-k takes the first k sentences of a pysbd split.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

METRICS = ("rouge1", "rouge2", "rougeLsum")


@dataclass(frozen=True)
class Example:
    """One document with its reference summaries (each a list of sentences)."""

    id: str
    text: str
    references: list[list[str]]


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    #: Summary length used when the caller does not give one.
    default_k: int


def _sentences(text: str) -> list[str]:
    """Reference sentences, split by pysbd as the shared baselines were."""
    return [s.strip() for s in _segmenter().segment(text) if s.strip()]


@functools.cache
def _segmenter() -> Any:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def read_examples(path: Path) -> tuple[DatasetFormat, list[Example]]:
    """Read a JSONL file in one of the dev formats; papers with the abstract in the body are
    skipped (their gold summary quotes the abstract)."""
    examples: list[Example] = []
    fmt: DatasetFormat | None = None
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if not line.strip():
                continue
            row: dict[str, Any] = json.loads(line)
            if "article" in row:
                fmt = fmt or DatasetFormat("news", 3)
                refs = [_sentences(row["reference"])]
                examples.append(Example(str(row.get("id", n)), row["article"], refs))
            elif "source" in row and "target" in row:
                fmt = fmt or DatasetFormat("tldr", 1)
                refs = [_sentences(t) for t in row["target"]]
                examples.append(Example(str(row.get("paper_id", n)), " ".join(row["source"]), refs))
            elif "sections" in row:
                fmt = fmt or DatasetFormat("paper", 6)
                if row.get("abstract_in_body"):
                    continue
                body = "\n\n".join(" ".join(sec.get("sentences", [])) for sec in row["sections"])
                golds = row.get("human_summaries") or [row.get("gold_summary", "")]
                refs = [_sentences(g) for g in golds if g]
                examples.append(Example(str(row.get("paper_id", n)), body, refs))
            else:
                raise ValueError(f"{path}:{n + 1}: unknown format (keys {sorted(row)})")
    if fmt is None:
        raise ValueError(f"{path}: no examples")
    return fmt, examples


class RougeScorer:
    """F1 × 100 of ROUGE-1/2/Lsum, best over references, averaged over documents."""

    def __init__(self) -> None:
        from rouge_score import rouge_scorer

        self._scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
        self._sums = dict.fromkeys(METRICS, 0.0)
        self.count = 0
        #: Each document's ROUGE-1 (F1 × 100), for paired comparisons.
        self.rouge1: list[float] = []

    def add(self, summary: list[str], references: list[list[str]]) -> None:
        pred = "\n".join(summary)
        best = dict.fromkeys(METRICS, 0.0)
        for ref in references:
            scores = self._scorer.score("\n".join(ref), pred)
            for m in METRICS:
                best[m] = max(best[m], scores[m].fmeasure)
        for m in METRICS:
            self._sums[m] += best[m]
        self.count += 1
        self.rouge1.append(100 * best["rouge1"])

    def result(self) -> dict[str, float]:
        return {m: round(100 * self._sums[m] / max(1, self.count), 2) for m in METRICS}


def paired_interval(
    a: list[float], b: list[float], resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Mean of ``a − b`` over documents and its 95 % bootstrap interval (paired resampling)."""
    import numpy as np

    diff = np.asarray(a) - np.asarray(b)
    if diff.size == 0:
        return {"mean": None, "ci95": None}
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, (resamples, diff.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "mean": round(float(diff.mean()), 2),
        "ci95": [round(float(low), 2), round(float(high), 2)],
    }


def lead(text: str, k: int) -> list[str]:
    """The first ``k`` sentences of ``text`` by pysbd (../shared/README.md's baseline rule)."""
    return _sentences(text)[:k]


def batches(items: list[Example], size: int) -> Iterator[list[Example]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def evaluate(path: Path, k: int | None, summarizer: Any, batch_size: int = 16) -> dict[str, Any]:
    """Score docsum and lead-k on ``path``; returns both figures and the timing."""
    from ..summarizer.summarize import Summary, SummaryRequest

    fmt, examples = read_examples(path)
    k = k or fmt.default_k
    ours, baseline = RougeScorer(), RougeScorer()
    seconds = 0.0
    for chunk in batches(examples, batch_size):
        start = time.perf_counter()
        results = summarizer.summarize_batch(
            [SummaryRequest(e.text, max_sentences=k) for e in chunk]
        )
        seconds += time.perf_counter() - start
        for ex, res in zip(chunk, results, strict=True):
            sentences = [s.text for s in res.sentences] if isinstance(res, Summary) else []
            ours.add(sentences, ex.references)
            baseline.add(lead(ex.text, k), ex.references)
    return {
        "file": str(path),
        "format": fmt.name,
        "documents": len(examples),
        "k": k,
        "docsum": ours.result(),
        f"lead-{k}": baseline.result(),
        f"rouge1_minus_lead-{k}": paired_interval(ours.rouge1, baseline.rouge1),
        "docs_per_s": round(len(examples) / seconds, 2) if seconds else None,
    }
