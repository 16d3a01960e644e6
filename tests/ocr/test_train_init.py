"""``make train-ocr`` on a fresh clone: ``--resume --init`` starts from the shipped weights when
the run folder has no last.pt, and resumes last.pt exactly when it has one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from docsum.ocr.model import CRNN, load_checkpoint
from tests.support.services import ROOT

SHIPPED = ROOT / "services" / "ocr" / "weights" / "crnn.pt"


def train(out: Path, steps: int) -> None:
    """``make train-ocr``'s command, cut to ``steps`` small steps, exporting nothing."""
    cmd = [
        sys.executable,
        "-m",
        "docsum.ocr.train.train",
        "--out",
        str(out),
        "--resume",
        "--init",
        str(SHIPPED),
        "--max-steps",
        str(steps),
        "--batch-size",
        "2",
        "--export",
        "",
        "--val-dir",
        str(out / "no-validation-set"),
        "--val-synth",
        "0",
        "--no-bf16",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def max_param_diff(a: CRNN, b: CRNN) -> float:
    """Largest difference between learned weights (BatchNorm statistics left out)."""
    pb = dict(b.named_parameters())
    return max((p - pb[n]).abs().max().item() for n, p in a.named_parameters())


@pytest.mark.slow
def test_a_fresh_run_starts_from_the_shipped_weights_then_resumes(tmp_path: Path) -> None:
    from docsum.ocr.train.fonts import find_fonts

    if not find_fonts():
        pytest.skip("no fonts installed (scripts/install_fonts.sh)")
    shipped, _, _ = load_checkpoint(SHIPPED)
    train(tmp_path, steps=1)
    ck = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=False)
    first, _, _ = load_checkpoint(tmp_path / "last.pt")
    assert ck["step"] == 1
    # One warm-up step (lr 1 % of the peak) moves the shipped weights by ~1e-5; a model trained
    # from scratch would be far from them.
    assert max_param_diff(first, shipped) < 1e-3
    assert max_param_diff(CRNN(shipped.config), shipped) > 0.1
    assert ck["optimizer"]["state"], "the optimizer state is saved for the resume"

    train(tmp_path, steps=2)
    ck = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=False)
    assert ck["step"] == 2  # continued at step 1: --init was not applied over last.pt
    log = (tmp_path / "train.log").read_text()
    assert log.count('"event": "init"') == 1 and log.count('"event": "resume"') == 1
