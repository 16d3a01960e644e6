"""Batch summarization of JSONL files for the CLI: many documents per model call.

Input lines are ``{"id", "text"}`` (``"article"`` is accepted for ``"text"``); output lines
are ``{"id", "summary"}`` with the summary's sentences joined by newlines, in input order. A
line that cannot be read or summarized gets ``{"id", "error"}`` and the rest go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any, TextIO

from ..console import read_rows, summary_row
from .summarize import Summarizer, Summary, SummaryRequest

Row = tuple[Any, str | None, str | None]


def _chunks(fh: TextIO, size: int) -> Iterator[list[Row]]:
    rows = read_rows(fh)
    while chunk := list(islice(rows, size)):
        yield chunk


def summarize_jsonl(
    model: Summarizer,
    fh: TextIO,
    out: TextIO,
    max_sentences: int | None,
    ratio: float | None,
    batch: int,
    on_batch: Callable[[int, int], None] | None = None,
) -> int:
    """Summarize every line of ``fh`` into ``out``; 0 when all succeeded, else 1.

    ``on_batch(documents, failed)`` is called after each batch is written (progress).
    """
    any_failed = False
    for chunk in _chunks(fh, batch):
        todo = [(i, text) for i, (_, text, err) in enumerate(chunk) if err is None and text]
        requests = [SummaryRequest(text, max_sentences, ratio) for _, text in todo]
        results: dict[int, Summary | Exception] = dict(
            zip((i for i, _ in todo), model.summarize_batch(requests), strict=True)
        )
        failed = 0
        for i, (doc_id, _, err) in enumerate(chunk):
            result = results.get(i)
            if err is None and not isinstance(result, Summary):
                err = str(result)
            if err is not None or not isinstance(result, Summary):
                failed += 1
                out.write(summary_row(doc_id, None, err))
            else:
                out.write(summary_row(doc_id, [s.text for s in result.sentences]))
        out.flush()
        any_failed = any_failed or failed > 0
        if on_batch is not None:
            on_batch(len(chunk), failed)
    return 1 if any_failed else 0
