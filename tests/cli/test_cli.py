"""The ``docsum`` command's conventions: version, help, input checks, serve flags, progress."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docsum import console
from docsum.cli import check_inputs, parser, serve_settings
from docsum.common.version import VERSION


def _docsum(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docsum.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def _parsers(
    p: argparse.ArgumentParser, path: str = "docsum"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, p)]
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _parsers(sub, f"{path} {name}")
    return found


def test_version_is_the_package_s() -> None:
    out = _docsum("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"docsum {VERSION}"


def test_every_option_and_command_has_help() -> None:
    missing = []
    for path, p in _parsers(parser()):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{path} {a.dest}" for a in action._choices_actions if not a.help]
            elif not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"no help text: {missing}"


def test_top_level_help_is_for_users() -> None:
    text = parser().format_help()
    assert "examples" in text and "examples/news.txt" in text and "exit codes" in text
    assert "imported only when" not in text  # the module's docstring is for developers


def test_a_missing_input_stops_at_once_with_one_line(tmp_path: Path) -> None:
    """Before any model loads: in a fresh interpreter, exit 2, one line, no torch imported."""
    code = (
        "import sys; from docsum.cli import main; rc = main(['summarize', 'missing.txt']); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)"
    )
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert time.monotonic() - start < 20
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [
        "docsum: error: cannot read missing.txt: No such file or directory"
    ]


def test_input_checks(tmp_path: Path) -> None:
    text = tmp_path / "a.txt"
    text.write_text("A sentence.")

    def problem(*argv: str) -> str | None:
        return check_inputs(parser().parse_args(list(argv)))

    assert problem("summarize", str(text), "-") is None
    assert problem("summarize", str(tmp_path)) == f"{tmp_path} is a folder, not a file"
    assert problem("summarize", "--jsonl", str(text), str(text)) == "--jsonl reads one file"
    assert "cannot read nope.png" in (problem("ocr", str(text), "nope.png") or "")
    assert problem("eval", "ocr-lines", str(tmp_path)) is None  # data folders are fine there
    assert problem("document", "nope.pdf") == "cannot read nope.pdf: No such file or directory"


def test_document_needs_a_gateway_and_a_key(tmp_path: Path) -> None:
    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("DOCSUM_")}
    out = _docsum("document", str(pdf), env=env)
    assert out.returncode == 2 and "--url" in out.stderr
    out = _docsum("--url", "http://127.0.0.1:9", "document", str(pdf), env=env)
    assert out.returncode == 2 and "API key" in out.stderr
    out = _docsum("--url", "127.0.0.1:8080", "--api-key", "k", "document", str(pdf), env=env)
    assert out.returncode == 2 and "http://" in out.stderr


def test_client_options_go_before_or_after_the_command() -> None:
    before = parser().parse_args(["--url", "http://a", "-j", "8", "summarize", "f"])
    after = parser().parse_args(["summarize", "f", "--url", "http://a", "-j", "8"])
    for args in (before, after):
        assert (args.url, args.jobs) == ("http://a", 8)
    # Given before the command, not hidden by the command's own (unset) copy of the option.
    assert parser().parse_args(["-j", "3", "ocr", "x.png"]).jobs == 3


def test_serve_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCSUM_GATEWAY_PORT", "9001")
    monkeypatch.setenv("DOCSUM_GATEWAY_HOST", "0.0.0.0")
    monkeypatch.setenv("DOCSUM_GATEWAY_LOG_LEVEL", "WARNING")
    args = parser().parse_args(["serve", "gateway", "--port", "9002", "--log-level", "debug"])
    settings = serve_settings(args)
    assert (settings.port, settings.log_level, settings.host) == (9002, "DEBUG", "0.0.0.0")
    settings = serve_settings(parser().parse_args(["serve", "gateway"]))
    assert (settings.port, settings.log_level) == (9001, "WARNING")


def test_plain_progress_lines_off_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "docsum.progress")
    with console.Progress("summarize", 10, "doc", bar=False, every_s=0.0) as progress:
        for _ in range(4):
            progress.update(1)
        progress.update(1, failed=1, loss="0.5")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("summarize: 1/10 docs, ") and "ETA" in lines[0]
    assert lines[-1].startswith("summarize: 5/10 docs, in ") and lines[-1].endswith(
        "loss 0.5, 1 failed"
    )
    fields = vars(caplog.records[-1])  # what a JSON log line carries
    assert fields["failed"] == 1 and fields["total"] == 10


def test_text_logs_are_short_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        console.configure("text")
        logging.getLogger("docsum.cli").info("hello")
        logging.getLogger("docsum.summarizer").info("hidden at INFO")
        logging.getLogger("docsum.summarizer").warning("shown")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert capsys.readouterr().err.splitlines() == ["docsum: hello", "docsum: warning: shown"]
