"""How a training run chooses and combines checkpoints, and the small capitals of its data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from docsum.ocr.model import CRNN, load_checkpoint
from docsum.ocr.model.charset import DEFAULT_CHARSET
from docsum.ocr.model.crnn import CRNNConfig, save_checkpoint
from docsum.ocr.train import synth, train


def _fonts() -> list:
    from docsum.ocr.train.fonts import find_fonts

    fonts = find_fonts()
    if not fonts:
        pytest.skip("no fonts installed (scripts/install_fonts.sh)")
    return fonts


def test_average_of_checkpoints_is_the_mean_of_their_weights(tmp_path: Path) -> None:
    config = CRNNConfig(channels=(4, 4, 8, 8, 8), hidden=8)
    paths = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        model = CRNN(config)
        for buf in model.buffers():  # BatchNorm statistics differ too
            if buf.is_floating_point():
                buf.uniform_(0.5, 1.5)
        paths.append(tmp_path / f"snap-{seed}.pt")
        save_checkpoint(paths[-1], model, DEFAULT_CHARSET, {"step": seed})
    states = [load_checkpoint(p)[0].state_dict() for p in paths]

    mean, meta = train.average_weights(paths)

    assert meta["averaged_steps"] == [1, 2, 3]
    for name, value in mean.state_dict().items():
        if value.is_floating_point():
            expected = sum(s[name] for s in states) / 3
            torch.testing.assert_close(value, expected, msg=name)
    # The command exports the mean as the fp16 file the service loads.
    out = tmp_path / "avg.pt"
    assert (
        train.main(["--out", str(tmp_path), "--average", *map(str, paths), "--export", str(out)])
        == 0
    )
    exported, _, _ = load_checkpoint(out)
    first = next(iter(mean.state_dict()))
    torch.testing.assert_close(
        exported.state_dict()[first], mean.state_dict()[first], atol=1e-2, rtol=1e-2
    )


@pytest.mark.slow
def test_held_out_lines_are_the_same_in_every_run_and_not_the_training_stream() -> None:
    fonts = _fonts()
    a = train.held_out_lines(fonts, 6, seed=0, height=32)
    b = train.held_out_lines(fonts, 6, seed=0, height=32)
    assert [t for _, t in a] == [t for _, t in b]
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(a, b, strict=True))
    stream = synth.LineSynth(fonts, seed=0)
    assert {t for _, t in a}.isdisjoint(stream.sample()[1] for _ in range(30))


@pytest.mark.slow
def test_small_capitals_are_drawn_smaller_and_labelled_as_capitals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fonts = _fonts()
    widths = {}
    for share in (0.0, 1.0):
        monkeypatch.setattr(synth, "SMALL_CAPS", share)
        lines = synth.LineSynth(fonts, seed=11)
        img, label = lines.render("Hello world" if share else "HELLO WORLD", difficulty=0.0)
        widths[share] = img.shape[1]
        assert label == "HELLO WORLD"
    # The same font and size (same seed): reduced capitals make the line narrower.
    assert widths[1.0] < widths[0.0]
