"""The ``docsum`` command: serve, run the local stack, summarize, evaluate.

Service modules are imported only when needed, so ``docsum serve gateway`` never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

#: service → the function that builds its app. Entries appear as services land.
SERVICES: dict[str, str] = {
    "ocr": "docsum.ocr.app:build_app",
    "summarizer": "docsum.summarizer.app:build_app",
    "gateway": "docsum.gateway.app:build_app",
}

log = logging.getLogger("docsum.cli")


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def cmd_serve(args: argparse.Namespace) -> int:
    from .common.logs import configure_logging
    from .common.service import serve

    app = _load(SERVICES[args.service])()
    configure_logging(args.service, app.state.settings.log_level)
    serve(app, app.state.settings)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from .local import run_stack

    unknown = sorted(set(args.services) - set(SERVICES))
    if unknown:
        raise SystemExit(f"unknown service(s) {unknown}; choose from {sorted(SERVICES)}")
    return run_stack(args.services or list(SERVICES))


def cmd_summarize(args: argparse.Namespace) -> int:
    from .summarizer.settings import SummarizerSettings
    from .summarizer.summarize import Summarizer, SummaryRequest

    overrides = {"precision": args.precision} if args.precision else {}
    model = Summarizer(SummarizerSettings(**overrides))
    model.load()
    fh = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    with fh:
        if not args.jsonl:
            [result] = model.summarize_batch(
                [SummaryRequest(fh.read(), args.max_sentences, args.ratio)]
            )
            if isinstance(result, Exception):
                log.error("cannot summarize: %s", result)
                return 1
            sys.stdout.write("\n".join(s.text for s in result.sentences) + "\n")
            return 0
        from .summarizer.jsonl import summarize_jsonl

        return summarize_jsonl(model, fh, sys.stdout, args.max_sentences, args.ratio, args.batch)


def cmd_ocr(args: argparse.Namespace) -> int:
    import time

    from .ocr.engine import OCREngine, document_text
    from .ocr.intake import Limits, decode_pages
    from .ocr.settings import OCRSettings

    settings = OCRSettings()
    engine = OCREngine(settings)
    engine.load()
    limits = Limits(settings.max_pixels, settings.max_side, settings.max_pages)
    paths = [Path(p) for p in args.images]
    failed, started, last_report = 0, time.monotonic(), 0.0

    def load(path: Path) -> list[Any]:
        return decode_pages(path.read_bytes(), limits)

    for n, (path, pages) in enumerate(
        engine.read_stream(paths, load, args.mode, chunk=args.batch), 1
    ):
        error = None
        if isinstance(pages, Exception):
            failed += 1
            error = str(pages) if not isinstance(pages, OSError) else f"{pages.strerror}: {path}"
            log.error("cannot read %s: %s", path, error)
            text = ""
        else:
            text = document_text(pages)
        if args.format == "jsonl":
            record: dict[str, Any] = {"file": str(path), "text": text}
            if error:
                record["error"] = error
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        elif args.mode == "line":
            sys.stdout.write(" ".join(text.split("\n")) + "\n")  # one output line per image
        else:
            sys.stdout.write(text + "\n")
        sys.stdout.flush()
        now = time.monotonic()
        if len(paths) > 1 and (now - last_report > 2.0 or n == len(paths)):
            last_report = now
            log.info(
                "progress %d/%d files, %.1f files/s", n, len(paths), n / max(1e-9, now - started)
            )
    return 1 if failed else 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.task.startswith("ocr-"):
        from .eval.ocr import evaluate as evaluate_ocr

        kind = {"ocr-lines": "lines", "ocr-pages": "pages", "ocr-receipts": "receipts"}[args.task]
        for path in args.paths:
            report = evaluate_ocr(
                kind,  # type: ignore[arg-type]
                Path(path),
                every=args.every,
                limit=args.limit,
                tesseract=not args.no_tesseract,
                progress=lambda who, n, total: log.info("%s: %d/%d", who, n, total),
            )
            sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
        return 0
    if args.task == "summarize":
        from .eval.summarize import evaluate
        from .summarizer.settings import SummarizerSettings
        from .summarizer.summarize import Summarizer

        model = Summarizer(SummarizerSettings())
        model.load()
        for path in args.paths:
            report = evaluate(Path(path), args.max_sentences, model)
            sys.stdout.write(json.dumps(report) + "\n")
        return 0
    raise SystemExit(f"unknown eval task {args.task}")


def cmd_train(args: argparse.Namespace) -> int:
    from .ocr.train.train import main as train_main

    return int(train_main(args.args) or 0)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="docsum", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run one service (settings from DOCSUM_<SERVICE>_* env)")
    s.add_argument("service", choices=sorted(SERVICES))
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("up", help="run the services locally on 127.0.0.1 until Ctrl-C")
    s.add_argument("services", nargs="*", help=f"which of {sorted(SERVICES)} (default: all)")
    s.set_defaults(func=cmd_up)

    s = sub.add_parser("summarize", help="summarize a text file, stdin (-) or a JSONL file")
    s.add_argument("file", help="a text file, - for stdin, or with --jsonl lines {id, text}")
    s.add_argument("--jsonl", action="store_true", help="read {id, text|article} lines")
    s.add_argument("--max-sentences", type=int, default=None)
    s.add_argument("--ratio", type=float, default=None)
    s.add_argument("--batch", type=int, default=32, help="documents per model call")
    s.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16", "int8"],
        default=None,
        help="encoder precision (default: DOCSUM_SUMMARIZER_PRECISION, else auto); "
        "int8 is faster on CPU, slightly less exact (for bulk jobs)",
    )
    s.set_defaults(func=cmd_summarize)

    s = sub.add_parser("ocr", help="read text from images (PNG, JPEG, TIFF, BMP, WebP)")
    s.add_argument("images", nargs="+", help="image files; TIFF frames are pages")
    s.add_argument(
        "--mode",
        choices=["page", "line"],
        default="page",
        help="page: find the lines; line: each image is one text line",
    )
    s.add_argument(
        "--format",
        choices=["text", "jsonl"],
        default="text",
        help="text: each input's text in order (line mode: one line per image); "
        "jsonl: {file, text} per input",
    )
    s.add_argument("--batch", type=int, default=8, help="images analysed per recognizer call")
    s.set_defaults(func=cmd_ocr)

    s = sub.add_parser("eval", help="measure quality on a dev file or folder")
    s.add_argument("task", choices=["summarize", "ocr-lines", "ocr-pages", "ocr-receipts"])
    s.add_argument("paths", nargs="+", help="JSONL files (summarize) or data folders (ocr-*)")
    s.add_argument("--max-sentences", type=int, default=None, help="summary length (k)")
    s.add_argument("--every", type=int, default=1, help="ocr-pages: every n-th page")
    s.add_argument("--limit", type=int, default=0, help="ocr-*: at most this many samples")
    s.add_argument("--no-tesseract", action="store_true", help="ocr-*: skip the Tesseract peer")
    s.set_defaults(func=cmd_eval)
    s = sub.add_parser("rollout", help="canary weights and blue/green on a cluster (no Argo)")
    from .rollout.cli import configure as configure_rollout

    configure_rollout(s)

    s = sub.add_parser("train", help="train a model (ocr: the CRNN; --help after it for options)")
    s.add_argument("model", choices=["ocr"])
    s.add_argument("args", nargs=argparse.REMAINDER, help="passed to the trainer")
    s.set_defaults(func=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command != "serve":
        from .common.logs import configure_logging

        configure_logging("cli", "INFO")
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # The reader went away (`docsum summarize --jsonl big.jsonl | head`): stop quietly,
        # with stdout pointed where Python's exit-time flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it


if __name__ == "__main__":
    raise SystemExit(main())
