"""The ``docsum`` command: the parser, the input checks, and the local commands.

Service and model modules are imported only when a command needs them: ``docsum serve gateway``
never loads torch, and the client mode (``--url``, services/client.py) needs httpx only.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import console
from .common.version import VERSION

#: service → the function that builds its app, and its settings class.
SERVICES: dict[str, tuple[str, str]] = {
    "ocr": ("docsum.ocr.app:build_app", "docsum.ocr.settings:OCRSettings"),
    "summarizer": (
        "docsum.summarizer.app:build_app",
        "docsum.summarizer.settings:SummarizerSettings",
    ),
    "gateway": ("docsum.gateway.app:build_app", "docsum.gateway.settings:GatewaySettings"),
    "worker": ("docsum.jobs.app:build_app", "docsum.jobs.settings:WorkerSettings"),
}

#: The commands a gateway can serve (client mode).
CLIENT_COMMANDS = ("summarize", "ocr", "document")

DESCRIPTION = """\
Read documents and summarize them: OCR of scanned pages and extractive summaries of texts, run
here or by a docsum gateway.

examples (files from the repository's examples/):
  docsum summarize examples/news.txt --max-sentences 2
  docsum summarize --jsonl examples/news.jsonl > summaries.jsonl
  docsum ocr examples/page.png
  docsum up                                  # the services (and Redis) on 127.0.0.1
  docsum --url http://127.0.0.1:8080 --api-key KEY document examples/scan-2pages.pdf

client mode: with --url (or DOCSUM_URL), summarize, ocr and document call that gateway
instead of loading models here (no torch needed), -j at a time, and write the same output.
"""

EPILOG = """\
exit codes: 0 done; 1 some inputs failed (each one says why on stderr); 2 usage error or an
input that cannot be read; 3 the gateway refused the API key; 4 the gateway could not be
reached or stayed unavailable.

Run 'docsum COMMAND --help' for a command's options. Services read their settings from
DOCSUM_<SERVICE>_* variables (docs/settings.md); the full reference is docs/api.md.
"""

log = logging.getLogger("docsum.cli")


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


# ---------------------------------------------------------------------------------------------
# Commands run here


def serve_settings(args: argparse.Namespace) -> Any:
    """The service's settings: DOCSUM_<SERVICE>_* variables, overridden by the flags given."""
    flags = {"host": args.host, "port": args.port, "log_level": args.log_level}
    # pydantic-settings: arguments win over the environment.
    return _load(SERVICES[args.service][1])(**{k: v for k, v in flags.items() if v is not None})


def cmd_serve(args: argparse.Namespace) -> int:
    from .common.service import serve

    settings = serve_settings(args)
    console.configure(args.log_format, args.service, settings.log_level)
    app = _load(SERVICES[args.service][0])(settings)
    serve(app, app.state.settings)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from .local import run_stack

    unknown = sorted(set(args.services) - set(SERVICES))
    if unknown:
        return _usage(f"unknown service(s) {unknown}; choose from {sorted(SERVICES)}")
    return run_stack(args.services or list(SERVICES))


def _progress(args: argparse.Namespace, what: str, total: int | None, unit: str) -> Any:
    return console.Progress(what, total, unit, bar=console.draws_bars(args.log_format))


def cmd_summarize(args: argparse.Namespace) -> int:
    from .summarizer.settings import SummarizerSettings
    from .summarizer.summarize import Summarizer, SummaryRequest

    overrides = {"precision": args.precision} if args.precision else {}
    model = Summarizer(SummarizerSettings(**overrides))
    model.load()
    if args.jsonl:
        from .summarizer.jsonl import summarize_jsonl

        [name] = args.files
        fh = sys.stdin if name == "-" else open(name, encoding="utf-8")  # noqa: SIM115
        with fh, _progress(args, "summarize", console.count_rows(name), "doc") as progress:
            return summarize_jsonl(
                model,
                fh,
                sys.stdout,
                args.max_sentences,
                args.ratio,
                args.batch,
                on_batch=lambda n, failed: progress.update(n, failed=failed),
            )
    failed = 0
    total = len(args.files) if len(args.files) > 1 else None
    with _progress(args, "summarize", total, "doc") as progress:
        for n, name in enumerate(args.files):
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
            request = SummaryRequest(text, args.max_sentences, args.ratio)
            [result] = model.summarize_batch([request])
            if n:
                console.write(sys.stdout, "\n")
            if isinstance(result, Exception):
                log.error("cannot summarize %s: %s", name, result)
                failed += 1
            else:
                console.write(sys.stdout, console.summary_text([s.text for s in result.sentences]))
            if total:
                progress.update(1, failed=int(isinstance(result, Exception)))
    return 1 if failed else 0


def cmd_ocr(args: argparse.Namespace) -> int:
    from .ocr.engine import OCREngine, document_text
    from .ocr.intake import Limits, decode_pages
    from .ocr.settings import OCRSettings

    settings = OCRSettings()
    engine = OCREngine(settings)
    engine.load()
    limits = Limits(settings.max_pixels, settings.max_side, settings.max_pages)
    paths = [Path(p) for p in args.images]
    failed = 0

    def load(path: Path) -> list[Any]:
        return decode_pages(path.read_bytes(), limits)

    total = len(paths) if len(paths) > 1 else None
    with _progress(args, "ocr", total, "file") as progress:
        for path, pages in engine.read_stream(paths, load, args.mode, chunk=args.batch):
            error = None
            if isinstance(pages, Exception):
                failed += 1
                error = (
                    str(pages) if not isinstance(pages, OSError) else f"{pages.strerror}: {path}"
                )
                log.error("cannot read %s: %s", path, error)
                text = ""
            else:
                text = document_text(pages)
            console.write(
                sys.stdout, console.ocr_result(str(path), text, error, args.format, args.mode)
            )
            if total:
                progress.update(1, failed=int(error is not None))
    return 1 if failed else 0


def _eval_ocr_progress(args: argparse.Namespace) -> tuple[Callable[[str, int, int], None], Any]:
    """A progress callback for ``eval ocr-*`` (docsum's pass, then Tesseract's), and its end."""
    state: dict[str, Any] = {"who": None, "done": 0, "progress": None}

    def update(who: str, n: int, total: int) -> None:
        if who != state["who"]:
            if state["progress"] is not None:
                state["progress"].close()
            state.update(
                who=who, done=0, progress=_progress(args, f"{args.task} {who}", total, "sample")
            )
        state["progress"].update(n - state["done"])
        state["done"] = n

    def close() -> None:
        if state["progress"] is not None:
            state["progress"].close()

    return update, close


class _CountingSummarizer:
    """A summarizer that reports each batch it summarized to a progress display."""

    def __init__(self, model: Any, progress: console.Progress) -> None:
        self.model, self.progress = model, progress

    def summarize_batch(self, requests: list[Any]) -> list[Any]:
        results = self.model.summarize_batch(requests)
        self.progress.update(len(results), failed=sum(isinstance(r, Exception) for r in results))
        return list(results)


def cmd_eval(args: argparse.Namespace) -> int:
    if args.task.startswith("ocr-"):
        from .eval.ocr import evaluate as evaluate_ocr

        kind = {"ocr-lines": "lines", "ocr-pages": "pages", "ocr-receipts": "receipts"}[args.task]
        for path in args.paths:
            update, close = _eval_ocr_progress(args)
            try:
                report = evaluate_ocr(
                    kind,  # type: ignore[arg-type]
                    Path(path),
                    every=args.every,
                    limit=args.limit,
                    tesseract=not args.no_tesseract,
                    progress=update,
                )
            finally:
                close()
            console.write(sys.stdout, console.json_line(report))
        return 0
    from .eval.summarize import evaluate, read_examples
    from .summarizer.settings import SummarizerSettings
    from .summarizer.summarize import Summarizer

    model = Summarizer(SummarizerSettings())
    model.load()
    for path in args.paths:
        total = len(read_examples(Path(path))[1])
        with _progress(args, f"eval {Path(path).name}", total, "doc") as progress:
            report = evaluate(Path(path), args.max_sentences, _CountingSummarizer(model, progress))
        console.write(sys.stdout, console.json_line(report))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .ocr.train import train

    if args.log_format == "json":  # the trainer's own JSON events, on stdout as before
        return int(train.main(args.args) or 0)
    # Progress in steps when the run is capped by --max-steps, else in seconds of its budget.
    max_steps = train.parse_args(args.args).max_steps
    bar = console.draws_bars(args.log_format)
    state: dict[str, Any] = {"progress": None, "loss": None, "done": 0}

    def listen(event: str, fields: dict[str, Any]) -> None:
        if event == "start":
            total, unit = (max_steps, "step") if max_steps > 0 else (round(fields["budget_s"]), "s")
            state["progress"] = console.Progress("train ocr", total, unit, bar=bar, every_s=10.0)
            return
        progress = state["progress"]
        if progress is None:
            return
        if event == "step":
            # The CTC loss, averaged over the last ~50 steps.
            last = state["loss"]
            loss = fields["loss"] if last is None else 0.98 * last + 0.02 * fields["loss"]
            done = fields["step"] if max_steps > 0 else int(fields["trained_s"])
            state["loss"] = loss
            progress.update(done - state["done"], step=fields["step"], loss=f"{loss:.3f}")
            state["done"] = done
        elif event == "val":
            progress.update(0, cer=f"{fields['cer']:.2f}%")

    train.listeners.append(listen)
    try:
        return int(train.main(args.args, log_to_stdout=False) or 0)
    finally:
        train.listeners.remove(listen)
        if state["progress"] is not None:
            state["progress"].close()


# ---------------------------------------------------------------------------------------------
# The parser


def _client_options(suppress: bool) -> argparse.ArgumentParser:
    """--url, --api-key, -j, --retries, --timeout: before the command (with their defaults) or
    after it (``suppress``: only when given, so they do not hide the ones given before)."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("client mode (summarize, ocr, document through a gateway)")
    g.add_argument(
        "--url",
        default=default(os.environ.get("DOCSUM_URL") or None),
        help="a docsum gateway, e.g. http://127.0.0.1:8080: call it instead of loading models "
        "(default: $DOCSUM_URL)",
    )
    g.add_argument(
        "--api-key",
        metavar="KEY",
        default=default(os.environ.get("DOCSUM_API_KEY", "")),
        help="the gateway's API key (default: $DOCSUM_API_KEY)",
    )
    g.add_argument(
        "-j",
        "--jobs",
        metavar="N",
        type=_positive_int,
        default=default(4),
        help="requests in flight at once (default: 4)",
    )
    g.add_argument(
        "--retries",
        metavar="N",
        type=int,
        default=default(5),
        help="tries again after a 429 or 503 (waiting what Retry-After says) or a failed "
        "connection (default: 5)",
    )
    g.add_argument(
        "--timeout",
        metavar="S",
        type=float,
        default=default(300.0),
        help="seconds to wait for one answer (default: 300)",
    )
    return p


def _positive_int(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _length_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-sentences",
        type=int,
        default=None,
        metavar="N",
        help="at most N sentences (1-1000); with neither this nor --ratio, 3",
    )
    p.add_argument(
        "--ratio",
        type=float,
        default=None,
        help="at most this fraction (0-1] of the document's sentences; with --max-sentences, "
        "the shorter wins",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="docsum",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_client_options(suppress=False)],
    )
    p.add_argument("--version", action="version", version=f"docsum {VERSION}")
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=None,
        help="text: short lines, and progress bars on a terminal; json: one JSON object a "
        "line, progress included (default: json for serve and up, text for the rest)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    client = _client_options(suppress=True)

    s = sub.add_parser(
        "summarize",
        parents=[client],
        help="summarize text files, stdin (-), or a JSONL file of documents",
        description="Print the summary's sentences, one a line (several files: a blank line "
        "between them), or with --jsonl write {id, summary} per input line {id, text}.",
    )
    s.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="text files (UTF-8), - for stdin; with "
        "--jsonl, one file of {id, text} lines ('article' is read as 'text')",
    )
    s.add_argument(
        "--jsonl",
        action="store_true",
        help="read one JSON document a line; write {id, summary} (or {id, error}) in input order",
    )
    _length_options(s)
    s.add_argument("--batch", type=int, default=32, help="documents per model call (local)")
    s.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16", "int8"],
        default=None,
        help="encoder precision (local; default: DOCSUM_SUMMARIZER_PRECISION, else auto); "
        "int8 is faster on CPU, slightly less exact (for bulk jobs)",
    )
    s.set_defaults(func=cmd_summarize)

    s = sub.add_parser(
        "ocr",
        parents=[client],
        help="read the text of images (PNG, JPEG, TIFF, BMP, WebP)",
        description="Print each image's text in input order, or {file, text} per image.",
    )
    s.add_argument("images", nargs="+", metavar="IMAGE", help="image files; TIFF frames are pages")
    s.add_argument(
        "--mode",
        choices=["page", "line"],
        default="page",
        help="page: find the text lines; line: each image is one text line",
    )
    s.add_argument(
        "--format",
        choices=["text", "jsonl"],
        default="text",
        help="text: each input's text in order (line mode: one line per image); "
        "jsonl: {file, text} per input",
    )
    s.add_argument(
        "--batch", type=int, default=8, help="images analysed per recognizer call (local)"
    )
    s.set_defaults(func=cmd_ocr)

    s = sub.add_parser(
        "document",
        parents=[client],
        help="text and summary of images, TIFFs and PDFs (through a gateway: needs --url)",
        description="Send each file to the gateway's documents:summarize and print its "
        "summary, or {file, text, summary} per file.",
    )
    s.add_argument(
        "files", nargs="+", metavar="FILE", help="PDF, PNG, JPEG, TIFF, BMP or WebP files"
    )
    _length_options(s)
    s.add_argument(
        "--format",
        choices=["text", "jsonl"],
        default="text",
        help="text: each file's summary; jsonl: {file, text, summary} per file",
    )
    s.set_defaults(func=None)

    s = sub.add_parser(
        "eval",
        help="measure quality (ROUGE, CER) and speed on a dev file or folder",
        description="Print one JSON report per path.",
    )
    s.add_argument(
        "task",
        choices=["summarize", "ocr-lines", "ocr-pages", "ocr-receipts"],
        help="summarize: ROUGE against lead-k; ocr-*: CER on line images, pages or receipts",
    )
    s.add_argument(
        "paths", nargs="+", metavar="PATH", help="JSONL files (summarize) or data folders (ocr-*)"
    )
    s.add_argument("--max-sentences", type=int, default=None, help="summary length (k)")
    s.add_argument("--every", type=int, default=1, help="ocr-pages: every n-th page")
    s.add_argument("--limit", type=int, default=0, help="ocr-*: at most this many samples")
    s.add_argument("--no-tesseract", action="store_true", help="ocr-*: skip the Tesseract peer")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser(
        "serve",
        help="run one service (what a container runs)",
        description="Run one service until SIGTERM/Ctrl-C. Settings come from "
        "DOCSUM_<SERVICE>_* variables; these flags win over them.",
    )
    s.add_argument("service", choices=sorted(SERVICES), help="which service")
    s.add_argument("--host", default=None, help="address to listen on (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="TCP port (default: the service's)")
    s.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default=None,
        help="(default: INFO)",
    )
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser(
        "up",
        help="run the services on 127.0.0.1 until Ctrl-C (what make run runs)",
    )
    s.add_argument("services", nargs="*", help=f"which of {sorted(SERVICES)} (default: all)")
    s.set_defaults(func=cmd_up)

    s = sub.add_parser("rollout", help="canary weights and blue/green on a cluster (no Argo)")
    from .rollout.cli import configure as configure_rollout

    configure_rollout(s)

    s = sub.add_parser(
        "train",
        help="train a model (ocr: the CRNN; 'docsum train ocr --help' for its options)",
    )
    s.add_argument("model", choices=["ocr"], help="which model")
    s.add_argument("args", nargs=argparse.REMAINDER, help="the trainer's options")
    s.set_defaults(func=cmd_train)
    return p


# ---------------------------------------------------------------------------------------------
# Before anything loads


def _usage(message: str) -> int:
    """A usage error: one line on stderr, exit 2 (as argparse does)."""
    sys.stderr.write(f"docsum: error: {message}\n")
    return int(console.Exit.USAGE)


def check_inputs(args: argparse.Namespace) -> str | None:
    """Why the command's input files cannot be read (one line), or None when they can."""
    names: list[str] = []
    for attr in ("files", "images", "paths"):
        names += getattr(args, attr, None) or []
    if args.command == "summarize" and args.jsonl and len(args.files) != 1:
        return "--jsonl reads one file"
    if names.count("-") > 1:
        return "stdin (-) can be read once"
    for name in names:
        if name == "-" and args.command == "summarize":
            continue
        path = Path(name)
        if args.command == "eval" and path.is_dir():
            continue
        if path.is_dir():
            return f"{name} is a folder, not a file"
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            return f"cannot read {name}: {exc.strerror}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Hugging Face's own bars (e.g. "Loading weights") are noise here, and in a service's logs.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if args.log_format is None:
        args.log_format = "json" if args.command in ("serve", "up") else "text"
    if args.command != "serve":
        console.configure(args.log_format)
    problem = check_inputs(args)
    if problem:
        return _usage(problem)
    run = args.func
    if args.command in CLIENT_COMMANDS and args.url:
        if not args.url.startswith(("http://", "https://")):
            return _usage(f"--url {args.url!r} is not an http:// or https:// URL")
        if not args.api_key:
            return _usage("no API key for the gateway: give --api-key KEY or set DOCSUM_API_KEY")
        from .client import COMMANDS

        def run(a: argparse.Namespace) -> int:
            return COMMANDS[a.command](a, sys.stdout)

    elif args.command == "document":
        return _usage("document runs on a gateway: give --url URL (or set DOCSUM_URL)")
    try:
        return int(run(args))
    except BrokenPipeError:
        # The reader went away (`docsum summarize --jsonl big.jsonl | head`): stop quietly,
        # with stdout pointed where Python's exit-time flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
