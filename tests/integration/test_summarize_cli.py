"""`docsum summarize` as a user runs it: a text file, stdin, and JSONL in batches."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

DOC = (
    "Engineers finished the new bridge across the river on Monday. "
    "The bridge cuts the drive between the two towns from forty minutes to ten. "
    "It cost 120 million pounds, paid by the regional government. "
    "Local shops expect more customers from the other town."
)


def _docsum(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docsum.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_text_from_stdin_prints_the_summary_sentences() -> None:
    out = _docsum("summarize", "-", "--max-sentences", "2", stdin=DOC)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line in DOC for line in lines)


def test_precision_flag_overrides_the_setting() -> None:
    out = _docsum("--log-format", "json", "summarize", "-", "--precision", "fp32", stdin=DOC)
    assert out.returncode == 0, out.stderr
    loaded = [json.loads(x) for x in out.stderr.splitlines() if '"encoder loaded"' in x]
    assert loaded and loaded[0]["precision"] == "fp32"
    bad = _docsum("summarize", "-", "--precision", "int4", stdin=DOC)
    assert bad.returncode == 2 and "invalid choice: 'int4'" in bad.stderr


def test_precision_choices_are_the_settings_ones() -> None:
    # The parser does not import the summarizer's settings (the gateway's image lacks its
    # dependencies), so the choices are written out there: they must stay the same.
    from typing import get_args

    from docsum.cli import parser
    from docsum.summarizer.settings import SummarizerSettings

    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    flag = next(a for a in sub.choices["summarize"]._actions if a.dest == "precision")
    annotation = SummarizerSettings.model_fields["precision"].annotation
    assert list(flag.choices or []) == list(get_args(annotation))


def test_jsonl_keeps_order_and_fails_bad_lines_alone(tmp_path: Path) -> None:
    rows = [
        json.dumps({"id": "a", "text": DOC}),
        "{broken json",
        json.dumps({"id": "c", "article": DOC}),
        json.dumps({"id": "d", "text": "   "}),
        json.dumps({"id": "e", "text": "One sentence only."}),
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(rows) + "\n")
    out = _docsum("summarize", "--jsonl", str(path), "--max-sentences", "1", "--batch", "2")
    assert out.returncode == 1  # some lines failed
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert [g["id"] for g in got] == ["a", 2, "c", "d", "e"]
    assert got[0]["summary"] in DOC and got[0]["summary"] == got[2]["summary"]
    assert "not JSON" in got[1]["error"] and "text" in got[3]["error"]
    assert got[4]["summary"] == "One sentence only."
    assert out.stderr.splitlines()[-1].startswith("docsum: summarize: 5/5 docs, in ")
    assert out.stderr.splitlines()[-1].endswith(", 2 failed")


def test_a_reader_that_stops_early_ends_it_quietly(tmp_path: Path) -> None:
    # `docsum summarize --jsonl big.jsonl | head -1`: no traceback, the shell's SIGPIPE status.
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": n, "text": DOC}) + "\n" for n in range(400)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "docsum.cli", "summarize", "--jsonl", str(path), "--batch", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = json.loads(proc.stdout.readline())
    proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    assert first["id"] == 0 and first["summary"]
    assert proc.returncode == 141
    assert b"Traceback" not in err
