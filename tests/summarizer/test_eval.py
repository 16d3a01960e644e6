"""``docsum eval summarize``: ROUGE beside lead-k, and how sure a difference is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docsum.eval.summarize import evaluate, paired_interval
from docsum.summarizer.settings import SummarizerSettings
from docsum.summarizer.summarize import Summarizer


def test_paired_interval_brackets_the_mean_and_narrows_with_agreement() -> None:
    a = [40.0, 42.0, 38.0, 45.0, 41.0, 39.0, 44.0, 40.0]
    b = [39.0, 41.0, 39.0, 43.0, 40.0, 40.0, 42.0, 39.0]
    got = paired_interval(a, b)
    assert got["mean"] == pytest.approx(0.75)
    low, high = got["ci95"]
    assert low <= 0.75 <= high and low < high
    # The same gap on every document: no doubt left.
    assert paired_interval([x + 1 for x in b], b)["ci95"] == [1.0, 1.0]
    assert paired_interval([], []) == {"mean": None, "ci95": None}


@pytest.mark.slow  # loads the real summarizer
def test_evaluate_scores_docsum_and_lead_on_a_news_file(tmp_path: Path) -> None:
    article = (
        "The city council approved a new budget on Tuesday after a long debate. "
        "Spending on schools rises by four per cent, the largest increase in a decade. "
        "Critics said the plan ignores the state of the roads and public transport. "
        "The mayor said the budget balances the needs of families and businesses. "
        "A final vote on the transport plan is expected next month."
    )
    rows = [
        {
            "id": "a",
            "article": article,
            "reference": "The council approved a budget. Schools get more.",
        },
        {"id": "b", "article": article, "reference": "Critics said the plan ignores roads."},
    ]
    path = tmp_path / "news.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = Summarizer(SummarizerSettings(keep_freed_memory=False))  # pytest keeps glibc's malloc
    model.load()
    report = evaluate(path, 2, model)
    assert report["format"] == "news" and report["documents"] == 2 and report["k"] == 2
    for scores in (report["docsum"], report["lead-2"]):
        assert set(scores) == {"rouge1", "rouge2", "rougeLsum"}
        assert all(0 < v <= 100 for v in scores.values())
    gap = report["rouge1_minus_lead-2"]
    assert gap["mean"] == pytest.approx(
        report["docsum"]["rouge1"] - report["lead-2"]["rouge1"], abs=0.02
    )
