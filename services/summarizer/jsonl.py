"""Batch summarization of JSONL files for the CLI: many documents per model call.

Input lines are ``{"id", "text"}`` (``"article"`` is accepted for ``"text"``); output lines
are ``{"id", "summary"}`` with the summary's sentences joined by newlines, in input order. A
line that cannot be read or summarized gets ``{"id", "error"}`` and the rest go on.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from .summarize import Summarizer, Summary, SummaryRequest

log = logging.getLogger(__name__)


def _parse(n: int, line: str) -> tuple[Any, str | None, str | None]:
    """(id, text, error) of one input line."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return n, None, f"line {n} is not JSON: {exc.msg}"
    if not isinstance(row, dict):
        return n, None, f"line {n} is not a JSON object"
    text = row.get("text", row.get("article"))
    doc_id = row.get("id", n)
    if not isinstance(text, str) or not text.strip():
        return doc_id, None, f"line {n} has no non-empty 'text' (or 'article') string"
    return doc_id, text, None


def _chunks(fh: TextIO, size: int) -> Iterator[list[tuple[Any, str | None, str | None]]]:
    chunk = []
    for n, line in enumerate(fh, 1):
        if not line.strip():
            continue
        chunk.append(_parse(n, line))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Progress:
    """A progress line on stderr at most every ``every_s`` seconds."""

    def __init__(self, every_s: float = 2.0, stream: TextIO = sys.stderr) -> None:
        self.start = self.last = time.perf_counter()
        self.every_s = every_s
        self.stream = stream
        self.done = self.failed = 0

    def update(self, done: int, failed: int, final: bool = False) -> None:
        self.done += done
        self.failed += failed
        now = time.perf_counter()
        if final or now - self.last >= self.every_s:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            self.stream.write(
                f"summarized {self.done} documents ({self.failed} failed), {rate:.1f} docs/s\n"
            )
            self.stream.flush()


def summarize_jsonl(
    model: Summarizer,
    fh: TextIO,
    out: TextIO,
    max_sentences: int | None,
    ratio: float | None,
    batch: int,
) -> int:
    """Summarize every line of ``fh`` into ``out``; 0 when all succeeded, else 1."""
    progress = Progress()
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
                row: dict[str, Any] = {"id": doc_id, "error": err or "failed"}
            else:
                row = {"id": doc_id, "summary": "\n".join(s.text for s in result.sentences)}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.flush()
        progress.update(len(chunk), failed)
    progress.update(0, 0, final=True)
    return 1 if progress.failed else 0
