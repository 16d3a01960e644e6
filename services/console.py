"""What the ``docsum`` command writes: logs and progress on stderr, results on stdout.

Shared by the local commands (models in this process) and the client mode (a gateway's API), so
both write the same formats. Standard library only; tqdm is imported when a bar is drawn.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from enum import IntEnum
from typing import Any, Literal, TextIO

from .common.logs import configure_logging

LogFormat = Literal["text", "json"]


class Exit(IntEnum):
    """Exit codes of the ``docsum`` command (local and client mode)."""

    OK = 0
    #: Some inputs failed (the gateway refused them, or the model could not read them).
    FAILED = 1
    #: A usage error: a bad option, an input file that cannot be read, no URL or no API key.
    USAGE = 2
    #: The gateway refused the API key (401/403).
    AUTH = 3
    #: The gateway could not be reached or stayed unavailable (connection, 5xx, or 429/503
    #: after every retry).
    UNAVAILABLE = 4


log = logging.getLogger("docsum.progress")

# ---------------------------------------------------------------------------------------------
# Logs


class _TextFormatter(logging.Formatter):
    """``docsum: message`` (``docsum: warning: message`` from WARNING up), for people."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        text = f"docsum: {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure(fmt: LogFormat, service: str = "cli", level: str | None = None) -> None:
    """Logs on stderr: JSON lines (``fmt="json"``, what log collectors read) or short lines.

    In text mode only docsum's own command-line messages and warnings from elsewhere are shown
    unless ``level`` asks for more; JSON mode logs at ``level`` (INFO by default).
    """
    if fmt == "json":
        configure_logging(service, level or "INFO")
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or "WARNING")
    for name in ("docsum.cli", "docsum.progress", "docsum.client"):
        logging.getLogger(name).setLevel(level or "INFO")


# ---------------------------------------------------------------------------------------------
# Progress


def draws_bars(fmt: LogFormat, stream: TextIO | None = None) -> bool:
    """Whether progress is a bar: text logs to a terminal that can redraw a line."""
    stream = stream or sys.stderr
    return fmt == "text" and stream.isatty() and os.environ.get("TERM", "") != "dumb"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Progress of one job: a tqdm bar on a terminal, else a log line every ``every_s``.

    ``update(n, failed=..., **figures)`` counts ``n`` more items (``failed`` of them failed);
    ``figures`` (e.g. ``loss=0.41``) are shown beside the bar or added to the line. Use it as
    a context manager: the end writes the last line (or leaves the bar) with the totals.
    """

    def __init__(
        self,
        what: str,
        total: int | None,
        unit: str,
        *,
        bar: bool,
        every_s: float = 2.0,
    ) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.every_s = every_s
        self.done = self.failed = 0
        self.figures: dict[str, Any] = {}
        self.start = self.last = time.monotonic()
        self._bar: Any = None
        self._redirect: Any = None
        if bar:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            try:  # a terminal that reports no size (a bare pseudo-terminal) gets 80 columns
                sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
            except OSError:
                sized = False
            self._bar = tqdm(
                total=total,
                desc=what,
                unit=unit,
                file=sys.stderr,
                dynamic_ncols=sized,
                ncols=None if sized else 80,
                smoothing=0.1,
                mininterval=0.2,
            )
            # Log lines written while the bar is drawn go above it instead of through it.
            self._redirect = logging_redirect_tqdm()
            self._redirect.__enter__()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def update(self, n: int = 1, failed: int = 0, **figures: Any) -> None:
        self.done += n
        self.failed += failed
        self.figures.update(figures)
        if self._bar is not None:
            postfix = {**self.figures, **({"failed": self.failed} if self.failed else {})}
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.every_s and self.done != self.total:  # the end has its own
            self.last = now
            self._line(now)

    def _line(self, now: float, final: bool = False) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        parts = [f"{self.what}: {count} {self.unit}s"]
        if final:
            parts.append(f"in {elapsed:.1f} s")
        parts.append(f"{rate:.1f} {self.unit}s/s")
        if not final and self.total and rate > 0:
            parts.append(f"ETA {_duration((self.total - self.done) / rate)}")
        parts += [f"{k} {v}" for k, v in self.figures.items()]
        if self.failed:
            parts.append(f"{self.failed} failed")
        fields = {"done": self.done, "total": self.total, "failed": self.failed}
        log.info(", ".join(parts), extra={**fields, "rate": round(rate, 3), **self.figures})

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._redirect.__exit__(None, None, None)
            self._bar = None
            if not self.failed:
                return
        if self.done or self.failed:
            self._line(time.monotonic(), final=True)


# ---------------------------------------------------------------------------------------------
# Results on stdout, the same for local and client runs


def write(out: TextIO, text: str) -> None:
    out.write(text)
    out.flush()


def json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def summary_text(sentences: list[str]) -> str:
    """A summary as ``docsum summarize`` prints it: one sentence a line."""
    return "\n".join(sentences) + "\n"


def summary_row(doc_id: Any, sentences: list[str] | None, error: str | None = None) -> str:
    """One output line of ``docsum summarize --jsonl``: ``{id, summary}`` or ``{id, error}``."""
    row: dict[str, Any] = {"id": doc_id}
    if error is not None or sentences is None:
        row["error"] = error or "failed"
    else:
        row["summary"] = "\n".join(sentences)
    return json_line(row)


def ocr_result(file: str, text: str, error: str | None, fmt: str, mode: str) -> str:
    """One input's output of ``docsum ocr``: its text (``line`` mode: on one line), or a
    ``{file, text[, error]}`` JSON line."""
    if fmt == "jsonl":
        record: dict[str, Any] = {"file": file, "text": text}
        if error:
            record["error"] = error
        return json_line(record)
    if mode == "line":
        return " ".join(text.split("\n")) + "\n"
    return text + "\n"


# ---------------------------------------------------------------------------------------------
# Input of ``docsum summarize --jsonl``


def parse_row(n: int, line: str) -> tuple[Any, str | None, str | None]:
    """(id, text, error) of input line ``n`` (from 1): ``{"id", "text"}``, ``"article"``
    accepted for ``"text"``; the id defaults to ``n``."""
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


def read_rows(fh: TextIO) -> Iterator[tuple[Any, str | None, str | None]]:
    """:func:`parse_row` of every non-blank line of ``fh``."""
    for n, line in enumerate(fh, 1):
        if line.strip():
            yield parse_row(n, line)


def count_rows(path: str) -> int | None:
    """How many non-blank lines ``path`` has (None for stdin, ``-``): a progress bar's total."""
    if path == "-":
        return None
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())
