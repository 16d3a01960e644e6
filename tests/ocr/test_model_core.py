"""Fast CPU tests of the OCR recognizer core: charset, CTC decoding, CRNN, checkpoints, synth."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from docsum.ocr.model import (
    CRNN,
    DEFAULT_CHARSET,
    WIDTH_DOWNSAMPLE,
    Charset,
    CRNNConfig,
    batch_lines,
    greedy_decode,
    load_checkpoint,
    output_lengths,
    preprocess_line,
    save_checkpoint,
    to_ascii,
    width_buckets,
)
from docsum.ocr.model.charset import CHARS


def test_charset_round_trip_and_folding() -> None:
    text = "Price: £12.50 — “quoted” it’s 25°C • © 2024 ~{}|"
    ids = DEFAULT_CHARSET.encode(text)
    assert 0 not in ids and len(ids) == len(text)
    assert DEFAULT_CHARSET.decode(ids) == text
    assert DEFAULT_CHARSET.num_classes == len(CHARS) + 1 == 107
    # Look-alikes outside the alphabet are folded, unknown scripts dropped.
    assert DEFAULT_CHARSET.fold("ﬁne\u00a0wait…") == "fine wait..."
    assert DEFAULT_CHARSET.encode("a\u4e2db") == DEFAULT_CHARSET.encode("ab")
    assert to_ascii("“it’s” 67–120") == '"it\'s" 67-120'
    with pytest.raises(ValueError):
        Charset("abca")


def _log_probs(frames: list[list[tuple[int, float]]], num_classes: int = 107) -> torch.Tensor:
    """[T, 1, C] log-probs where each frame puts probability p on class c, the rest spread."""
    t = torch.full((len(frames), 1, num_classes), 1e-9)
    for i, (c, p) in enumerate(f[0] for f in frames):
        t[i, 0, :] = (1 - p) / (num_classes - 1)
        t[i, 0, c] = p
    return t.log()


def test_greedy_decode_collapses_repeats_and_blanks() -> None:
    cs = DEFAULT_CHARSET
    a, b = cs.encode("a")[0], cs.encode("b")[0]
    # a a _ a b b _  -> "aab"  (blank separates the repeated a)
    frames = [[(a, 0.9)], [(a, 0.6)], [(0, 0.99)], [(a, 0.8)], [(b, 0.7)], [(b, 0.95)], [(0, 0.9)]]
    (d,) = greedy_decode(_log_probs(frames), cs)
    assert d.text == "aab"
    # Per char: max prob over its run; line confidence: the minimum of those.
    assert d.char_probs == pytest.approx((0.9, 0.8, 0.95), abs=1e-5)
    assert d.confidence == pytest.approx(0.8, abs=1e-5)


def test_greedy_decode_respects_lengths_and_empty_lines() -> None:
    cs = DEFAULT_CHARSET
    c = cs.encode("c")[0]
    lp = torch.cat(
        [
            _log_probs([[(c, 0.9)], [(0, 0.9)], [(c, 0.9)]]),
            _log_probs([[(0, 0.7)], [(0, 0.5)], [(c, 0.9)]]),
        ],
        dim=1,
    )
    full, cut = greedy_decode(lp, cs, lengths=[3, 2])
    assert full.text == "cc"
    assert cut.text == "" and cut.confidence == pytest.approx(0.6, abs=1e-5)
    with pytest.raises(ValueError):
        greedy_decode(lp[0], cs)


@pytest.mark.parametrize("width", [16, 100, 803])
def test_crnn_forward_shapes(width: int) -> None:
    model = CRNN(CRNNConfig(channels=(8, 8, 16, 16, 16), hidden=16)).eval()
    lines = [
        preprocess_line(np.full((40, width), 255, np.uint8)),
        preprocess_line(np.full((20, width // 2 + 4), 255, np.uint8)),
    ]
    x, widths = batch_lines(lines)
    assert x.shape[-1] % WIDTH_DOWNSAMPLE == 0 and x.shape[2] == 32
    with torch.inference_mode():
        lp = model(x)
    assert lp.shape == (x.shape[-1] // WIDTH_DOWNSAMPLE, 2, 107)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:2]), atol=1e-4)
    assert (output_lengths(widths) <= lp.shape[0]).all()
    with pytest.raises(ValueError):
        model(torch.zeros(1, 1, 24, 64))


def test_fuse_for_inference_keeps_outputs() -> None:
    from docsum.ocr.model.crnn import fuse_for_inference

    torch.manual_seed(0)
    model = CRNN(CRNNConfig(channels=(8, 8, 16, 16, 16), hidden=16))
    for m in model.modules():  # non-trivial BatchNorm statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    model.eval()
    x = torch.rand(2, 1, 32, 96)
    with torch.inference_mode():
        ref = model(x)
        fused = fuse_for_inference(model)(x)
    assert torch.allclose(ref, fused, atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_preprocess_line_normalizes_height_and_contrast() -> None:
    img = np.full((64, 300), 200, np.uint8)
    img[20:40, 10:290] = 40
    out = preprocess_line(img, 32)
    assert out.shape == (32, 150) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    assert preprocess_line(np.full((10, 10), 128, np.uint8)).min() == 1.0  # blank stays white


def test_width_buckets_group_similar_widths() -> None:
    widths = [50, 400, 60, 390, 55, 410]
    buckets = width_buckets(widths, 3)
    assert [sorted(widths[i] for i in b) for b in buckets] == [[50, 55, 60], [390, 400, 410]]


def test_width_buckets_are_even_and_cover_every_crop() -> None:
    for n, size in [(33, 32), (64, 32), (65, 32), (1, 32), (7, 3), (100, 1)]:
        buckets = width_buckets(list(range(n)), size)
        sizes = [len(b) for b in buckets]
        assert sorted(i for b in buckets for i in b) == list(range(n))
        assert max(sizes) <= size and max(sizes) - min(sizes) <= 1, (n, size, sizes)
        assert len(buckets) == -(-n // size)
    assert width_buckets([], 8) == []


def test_checkpoint_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    model = CRNN(CRNNConfig(channels=(8, 8, 16, 16, 16), hidden=16)).eval()
    x = torch.rand(2, 1, 32, 64)
    for half in (False, True):
        path = tmp_path / f"m{half}.pt"
        save_checkpoint(path, model, DEFAULT_CHARSET, {"step": 7}, half=half)
        loaded, cs, ck = load_checkpoint(path)
        assert ck["meta"]["step"] == 7 and cs.chars == DEFAULT_CHARSET.chars
        assert loaded.config == model.config
        with torch.inference_mode():
            diff = (loaded(x) - model(x)).abs().max().item()
        assert diff < (5e-2 if half else 1e-6)


def test_synth_renders_a_line_for_the_given_text() -> None:
    from docsum.ocr.train.fonts import find_fonts
    from docsum.ocr.train.synth import LineSynth

    fonts = find_fonts()
    if not fonts:
        pytest.skip("no fonts installed (scripts/install_fonts.sh)")
    synth = LineSynth(fonts[:20], seed=1)
    img, label = synth.render("Hello, world 123", difficulty=0.0)
    assert img.dtype == np.uint8 and img.ndim == 2
    assert img.min() < 100 and img.max() > 200  # ink on paper
    assert img.shape[1] > 3 * img.shape[0]  # a 16-character line is wide
    assert label == "Hello, world 123"
    line, text = synth.sample(difficulty=1.0)
    assert line.shape[0] == 32 and line.shape[1] >= 4 and text
    assert math.isfinite(float(line.mean()))


def test_corpus_covers_every_character() -> None:
    from docsum.ocr.train.corpus import TextSampler

    sampler = TextSampler(random.Random(0))
    lines = [sampler.line() for _ in range(3000)]
    assert all(1 <= len(t) <= 80 and t == t.strip() for t in lines)
    seen = set("".join(lines))
    assert set(CHARS) <= seen
    lower = sum(c.islower() for t in lines for c in t)
    assert lower > 0.5 * sum(len(t) for t in lines)  # mostly lower-case prose


def _bars(h: int = 60, w: int = 300) -> np.ndarray:
    """Black vertical strokes 6 px wide on white: a stand-in for glyphs."""
    img = np.full((h, w), 255, np.uint8)
    for x in range(10, w - 10, 20):
        img[10:50, x : x + 6] = 0
    return img


@pytest.mark.parametrize("name", ["dots", "wear"])
def test_print_damage_keeps_the_glyphs_and_changes_the_ink(name, monkeypatch) -> None:
    from docsum.ocr.train import augment

    monkeypatch.setattr(augment, "_maybe", lambda rng, p: True)  # always apply the step
    img = _bars()
    for seed in range(5):
        out = getattr(augment, name)(img, np.random.default_rng(seed), 1.0)
        assert out.shape == img.shape and out.dtype == np.uint8
        ink = img < 128
        assert not np.array_equal(out, img)  # the ink was changed ...
        for x in range(10, img.shape[1] - 10, 20):  # ... but every stroke is still there
            assert (out[10:50, max(0, x - 3) : x + 9] < 128).mean() > 0.1
        assert (out[~ink] > 200).mean() > 0.75  # and the paper stays paper, near enough


def test_spacing_follows_english_and_keeps_probabilities_aligned() -> None:
    from docsum.ocr.model.ctc import Decoded
    from docsum.ocr.model.spacing import tidy_spacing, tidy_text

    text = "they say ; but “ The Bell ” asks why ?"
    out = tidy_spacing(Decoded(text, 0.9, tuple(float(i) for i in range(len(text)))))
    assert out.text == "they say; but “The Bell” asks why?"
    assert len(out.char_probs) == len(out.text)
    assert [text[int(p)] for p in out.char_probs] == list(out.text)  # same characters' probs
    assert tidy_text("TEL : 03-6093 2032") == "TEL : 03-6093 2032"  # colons left as printed
    assert tidy_text("plain text") == "plain text"


def test_unsure_readings_are_junk_and_real_lines_are_not() -> None:
    from docsum.ocr.engine import is_junk
    from docsum.ocr.model.ctc import Decoded

    def reading(text: str, p: float) -> Decoded:
        return Decoded(text, p, tuple([p] * len(text)))

    assert is_junk(reading("4ge", 0.3)) and is_junk(reading("[)", 0.5))  # bits of a picture
    assert is_junk(reading("  ", 0.9))  # nothing read
    assert not is_junk(reading("46", 0.95))  # a page number, read surely
    assert is_junk(reading("UeRXACE=>aE2%^ S R", 0.37))  # a map's lettering
    assert not is_junk(reading("a worn but real line of text", 0.85))


def test_condensed_print_keeps_the_height_and_every_stroke(monkeypatch) -> None:
    from docsum.ocr.train import augment

    monkeypatch.setattr(augment, "_maybe", lambda rng, p: True)
    img = _bars()
    widths = set()
    for seed in range(20):
        out = augment.aspect(img, np.random.default_rng(seed), 1.0)
        assert out.shape[0] == img.shape[0] and out.dtype == np.uint8
        assert 0.69 * img.shape[1] <= out.shape[1] <= 1.26 * img.shape[1]
        cols = (out[10:50] < 128).any(axis=0)  # every bar is still a separate run of ink
        assert int(np.count_nonzero(np.diff(cols.astype(np.int8)) == 1)) == 14
        widths.add(out.shape[1])
    assert min(widths) < img.shape[1] < max(widths)  # both condensed and expanded
