"""``docsum summarize --jsonl`` draws a progress bar when stderr is a terminal (a pseudo-terminal
here), and the capture in docs/cli-progress.txt shows one."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.support.services import ROOT

pytestmark = [pytest.mark.slow]

#: A tqdm bar: "summarize:  40%|████      | 16/40 [00:05<00:07,  3.1doc/s]".
BAR = re.compile(r"summarize: +(\d+)%\|[^|]*\| (\d+)/(\d+) \[[\d:]+<[\d:?]+, +[\d.?]+ ?doc/s")


def run_in_terminal(argv: list[str], stdout: Path, timeout_s: float = 300) -> tuple[int, str]:
    """Run ``argv`` with stderr on a 100x24 pseudo-terminal; (exit code, what it drew)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with stdout.open("w") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=slave,
            cwd=ROOT,
            env={**os.environ, "TERM": "xterm-256color"},
        )
    os.close(slave)
    drawn = bytearray()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 0.5)[0]:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            drawn += chunk
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, drawn.decode(errors="replace")


def test_summarize_jsonl_draws_a_bar_on_a_terminal(tmp_path: Path) -> None:
    rows = (ROOT / "examples" / "news.jsonl").read_text().splitlines()
    path = tmp_path / "in.jsonl"
    path.write_text(
        "".join(json.dumps({**json.loads(rows[i % 3]), "id": i}) + "\n" for i in range(40))
    )
    out = tmp_path / "out.jsonl"
    argv = [sys.executable, "-m", "docsum.cli", "summarize", "--jsonl", str(path), "--batch", "4"]
    code, drawn = run_in_terminal(argv, out)
    assert code == 0, drawn
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == list(range(40))
    bars = [tuple(map(int, m.groups())) for m in BAR.finditer(drawn)]
    assert bars, drawn
    assert bars[-1] == (100, 40, 40) and all(total == 40 for _, _, total in bars)
    assert len({done for _, done, _ in bars}) >= 3  # redrawn as batches finish
    assert "\r" in drawn and '{"ts"' not in drawn  # a bar redrawn in place, no JSON log lines


def test_the_committed_capture_shows_a_bar() -> None:
    capture = (ROOT / "docs" / "cli-progress.txt").read_text()
    assert "docsum summarize --jsonl" in capture
    assert BAR.search(capture), capture


def test_training_shows_steps_and_the_running_loss(tmp_path: Path) -> None:
    from docsum.ocr.train.fonts import find_fonts

    if not find_fonts():
        pytest.skip("no fonts to render training lines (scripts/install_fonts.sh)")
    argv = [sys.executable, "-m", "docsum.cli", "train", "ocr", "--out", str(tmp_path / "run")]
    argv += ["--max-steps", "3", "--batch-size", "4", "--val-dir", str(tmp_path / "none")]
    argv += ["--val-synth", "0"]
    argv += ["--export", "", "--threads", "1"]
    code, drawn = run_in_terminal(argv, tmp_path / "stdout.txt")
    assert code == 0, drawn
    assert re.search(r"train ocr: 100%\|[^|]*\| 3/3 \[.*step=3, loss=\d+\.\d{3}\]", drawn), drawn
    assert (tmp_path / "stdout.txt").read_text() == ""  # the JSON events: in train.log only
    events = [json.loads(line)["event"] for line in (tmp_path / "run" / "train.log").open()]
    assert events[0] == "start" and events[-1] == "done"
