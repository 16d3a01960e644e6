"""The ``docsum`` command's client mode: the same commands, served by a running gateway.

``docsum --url URL --api-key KEY summarize|ocr|document FILE...`` sends each input to the
gateway's API (``-j`` at a time) and writes what the local commands write. 429 and 503 answers
and connections that could not be made are retried after the answer's ``Retry-After`` (else a
jittered backoff). Imports httpx and the standard library only: no model, no torch
(``pip install 'docsum[client]'``).
"""

from __future__ import annotations

import argparse
import email.utils
import logging
import mimetypes
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

import httpx

from . import console
from .common.version import VERSION
from .console import Exit

log = logging.getLogger("docsum.client")

T = TypeVar("T")
R = TypeVar("R")

#: The longest wait before a retry, whatever ``Retry-After`` says (seconds).
MAX_RETRY_WAIT_S = 60.0
#: Statuses worth sending again: rate limited, or the service is busy or starting.
RETRY_STATUSES = frozenset({429, 503})


class StopRun(Exception):
    """A failure that every other input would meet too: the run stops with ``exit``."""

    exit = Exit.UNAVAILABLE


class AuthError(StopRun):
    """The gateway refused the API key (401/403)."""

    exit = Exit.AUTH


class Unreachable(StopRun):
    """No connection to the gateway could be made, retries included."""


@dataclass(frozen=True)
class Answer:
    """The end of one call: a JSON body (``ok``), or why not."""

    body: dict[str, Any] | None
    error: str | None = None
    exit: Exit = Exit.OK

    @property
    def ok(self) -> bool:
        return self.error is None


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds from now: delay-seconds or an HTTP date; None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_of(response: httpx.Response) -> str:
    """``HTTP 422 invalid_input: message`` from the gateway's error body (or its first bytes)."""
    try:
        error = response.json()["error"]
        return f"HTTP {response.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200].strip()}"


class Gateway:
    """Calls to one gateway: an API key, a connection pool of ``jobs``, retries."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        jobs: int = 4,
        retries: int = 5,
        timeout_s: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retries = retries
        self.sleep = sleep
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        self.http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"X-API-Key": api_key, "User-Agent": f"docsum/{VERSION}"},
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            limits=httpx.Limits(max_connections=jobs, max_keepalive_connections=jobs),
        )

    def close(self) -> None:
        self.http.close()

    def _backoff_s(self, attempt: int, response: httpx.Response | None) -> float:
        after = retry_after_s(response.headers.get("retry-after")) if response else None
        if after is None:
            with self._rng_lock:
                after = min(8.0, 0.5 * 2**attempt) * (0.5 + self._rng.random())
        return min(after, MAX_RETRY_WAIT_S)

    def post(self, path: str, **request: Any) -> Answer:
        """POST ``path``; the JSON answer, or an error saying what failed. Raises
        :class:`AuthError` on 401/403, :class:`Unreachable` when no connection could be made."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.http.post(path, **request)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if last:
                    raise Unreachable(f"cannot reach {self.http.base_url}: {exc}") from exc
                self.sleep(self._backoff_s(attempt, None))
                continue
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                return Answer(None, f"{path}: {reason}", Exit.UNAVAILABLE)
            if response.status_code == 200:
                return Answer(response.json())
            if response.status_code in (401, 403):
                raise AuthError(_error_of(response))
            if response.status_code in RETRY_STATUSES and not last:
                self.sleep(self._backoff_s(attempt, response))
                continue
            code = Exit.UNAVAILABLE if response.status_code >= 500 else Exit.FAILED
            if response.status_code in RETRY_STATUSES:
                code = Exit.UNAVAILABLE
            return Answer(None, _error_of(response), code)
        raise AssertionError("unreachable")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], jobs: int) -> Iterator[R]:
    """``fn`` over ``items`` on ``jobs`` threads, results in input order, at most ``2 * jobs``
    items read ahead (a JSONL file of a million lines is not loaded at once)."""
    pool = ThreadPoolExecutor(jobs, thread_name_prefix="docsum-client")
    window: deque[Future[R]] = deque()
    try:
        for item in items:
            window.append(pool.submit(fn, item))
            if len(window) >= 2 * jobs:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:  # also when the caller stops early: what has not started never will
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------------------------
# The commands


def _upload(path: Path) -> tuple[str, bytes, str]:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return (path.name, path.read_bytes(), kind)


def _body(args: argparse.Namespace) -> dict[str, Any]:
    """The summary length asked for: ``max_sentences`` and ``ratio`` when given."""
    fields = {"max_sentences": args.max_sentences, "ratio": args.ratio}
    return {k: v for k, v in fields.items() if v is not None}


class _Run:
    """One client command: its gateway, its progress, the worst exit so far."""

    def __init__(self, args: argparse.Namespace, what: str, total: int | None, unit: str) -> None:
        #: One input needs no progress (as in the local commands).
        self.shown = total != 1
        self.gateway = Gateway(
            args.url, args.api_key, jobs=args.jobs, retries=args.retries, timeout_s=args.timeout
        )
        self.jobs = args.jobs
        self.exit = Exit.OK
        bar = console.draws_bars(args.log_format)
        self.progress = console.Progress(what, total, unit, bar=bar)

    def settle(self, answer: Answer, name: str) -> None:
        """Count ``answer`` (of input ``name``) in the progress and the exit code."""
        if not answer.ok:
            log.error("%s: %s", name, answer.error)
            self.exit = max(self.exit, answer.exit)
        if self.shown:
            self.progress.update(1, failed=0 if answer.ok else 1)

    def finish(self) -> int:
        self.progress.close()
        self.gateway.close()
        return int(self.exit)


def _guarded(run: Callable[[], int], state: _Run) -> int:
    try:
        return run()
    except StopRun as exc:
        state.progress.close()
        state.gateway.close()
        if isinstance(exc, AuthError):
            log.error(
                "the gateway refused the API key (%s): check --api-key or DOCSUM_API_KEY", exc
            )
        else:
            log.error("%s", exc)
        return int(exc.exit)


def summarize(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``docsum summarize`` through ``POST /api/v1/summarize``."""
    if args.jsonl:
        return _summarize_jsonl(args, out)
    run = _Run(args, "summarize", len(args.files), "doc")

    def one(name: str) -> tuple[str, Answer]:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        return name, run.gateway.post("/api/v1/summarize", json={"text": text, **_body(args)})

    def body() -> int:
        for n, (name, answer) in enumerate(ordered_map(one, args.files, run.jobs)):
            run.settle(answer, name)
            if n and len(args.files) > 1:
                console.write(out, "\n")
            if answer.ok and answer.body is not None:
                console.write(out, console.summary_text(_sentences(answer.body)))
        return run.finish()

    return _guarded(body, run)


def _sentences(body: dict[str, Any]) -> list[str]:
    return [s["text"] for s in body.get("sentences", [])]


def _summarize_jsonl(args: argparse.Namespace, out: TextIO) -> int:
    [name] = args.files
    run = _Run(args, "summarize", console.count_rows(name), "doc")
    fh = sys.stdin if name == "-" else open(name, encoding="utf-8")  # noqa: SIM115

    def one(row: tuple[Any, str | None, str | None]) -> tuple[Any, Answer]:
        doc_id, text, error = row
        if error is not None:
            return doc_id, Answer(None, error, Exit.FAILED)
        body = {"text": text, **_body(args)}
        return doc_id, run.gateway.post("/api/v1/summarize", json=body)

    def body() -> int:
        with fh:
            for doc_id, answer in ordered_map(one, console.read_rows(fh), run.jobs):
                run.settle(answer, f"id {doc_id}")
                sentences = _sentences(answer.body) if answer.body is not None else None
                console.write(out, console.summary_row(doc_id, sentences, answer.error))
        return run.finish()

    return _guarded(body, run)


def ocr(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``docsum ocr`` through ``POST /api/v1/ocr``."""
    run = _Run(args, "ocr", len(args.images), "file")

    def one(name: str) -> tuple[str, Answer]:
        files = {"file": _upload(Path(name))}
        return name, run.gateway.post("/api/v1/ocr", files=files, data={"mode": args.mode})

    def body() -> int:
        for name, answer in ordered_map(one, args.images, run.jobs):
            run.settle(answer, name)
            text = str(answer.body["text"]) if answer.body is not None else ""
            console.write(out, console.ocr_result(name, text, answer.error, args.format, args.mode))
        return run.finish()

    return _guarded(body, run)


def document(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``docsum document`` through ``POST /api/v1/documents:summarize``: text and summary of
    images, multi-page TIFFs and PDFs."""
    run = _Run(args, "document", len(args.files), "file")

    def one(name: str) -> tuple[str, Answer]:
        files = {"file": _upload(Path(name))}
        answer = run.gateway.post(
            "/api/v1/documents:summarize",
            files=files,
            data={k: str(v) for k, v in _body(args).items()},
        )
        if answer.ok and answer.body is not None and answer.body.get("summary") is None:
            reasons = "; ".join(e.get("message", "") for e in answer.body.get("errors", []))
            return name, Answer(answer.body, f"no summary: {reasons}", Exit.FAILED)
        return name, answer

    def body() -> int:
        for n, (name, answer) in enumerate(ordered_map(one, args.files, run.jobs)):
            run.settle(answer, name)
            got = answer.body or {}
            if args.format == "jsonl":
                record = {"file": name, "text": got.get("text", ""), "summary": got.get("summary")}
                if answer.error:
                    record["error"] = answer.error
                console.write(out, console.json_line(record))
            else:
                if n and len(args.files) > 1:
                    console.write(out, "\n")
                if got.get("summary"):
                    console.write(out, got["summary"] + "\n")
        return run.finish()

    return _guarded(body, run)


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "summarize": summarize,
    "ocr": ocr,
    "document": document,
}
