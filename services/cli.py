"""The ``docsum`` command: serve, run the local stack, summarize, evaluate.

Service modules are imported only when needed, so ``docsum serve gateway`` never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

#: service → the function that builds its app. Entries appear as services land.
SERVICES: dict[str, str] = {
    "summarizer": "docsum.summarizer.app:build_app",
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


def _read_jsonl(fh: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in enumerate(fh, 1):
        if line.strip():
            yield n, json.loads(line)


def cmd_summarize(args: argparse.Namespace) -> int:
    from .summarizer.settings import SummarizerSettings
    from .summarizer.summarize import Summarizer, SummaryRequest

    model = Summarizer(SummarizerSettings())
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


def cmd_eval(args: argparse.Namespace) -> int:
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
    s.set_defaults(func=cmd_summarize)

    s = sub.add_parser("eval", help="measure quality on a dev file")
    s.add_argument("task", choices=["summarize"])
    s.add_argument("paths", nargs="+")
    s.add_argument("--max-sentences", type=int, default=None, help="summary length (k)")
    s.set_defaults(func=cmd_eval)
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
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
