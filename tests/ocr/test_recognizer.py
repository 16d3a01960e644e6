"""The trained recognizer reads generated lines; rotations and bad crops are handled."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein

from docsum.common.errors import InvalidInput
from docsum.ocr.recognize import Recognizer
from docsum.ocr.settings import BUNDLED_WEIGHTS
from tests.support.documents import LINES, line_image


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    r = Recognizer(BUNDLED_WEIGHTS)
    r.load()
    return r


def grey(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"))


def cer(hyp: list[str], ref: list[str]) -> float:
    return sum(Levenshtein.distance(h, r) for h, r in zip(hyp, ref, strict=True)) / sum(
        len(r) for r in ref
    )


def test_trained_model_reads_generated_lines(recognizer: Recognizer) -> None:
    crops = [grey(line_image(t, size)) for t in LINES for size in (22, 36)]
    readings = recognizer.recognize(crops)
    texts = [r.text for r in readings if not isinstance(r, Exception)]
    assert cer(texts, [t for t in LINES for _ in (22, 36)]) < 0.08, texts
    assert all(0.0 <= r.confidence <= 1.0 for r in readings if not isinstance(r, Exception))
    assert recognizer.version.startswith("crnn-s")


def test_a_line_turned_90_degrees_is_read_upright(recognizer: Recognizer) -> None:
    crop = grey(line_image(LINES[0]))
    upright, turned = recognizer.recognize([crop, np.ascontiguousarray(np.rot90(crop))])
    assert not isinstance(upright, Exception) and not isinstance(turned, Exception)
    assert (
        Levenshtein.distance(turned.text, LINES[0])
        <= Levenshtein.distance(upright.text, LINES[0]) + 2
    )


def test_a_bad_crop_fails_alone(recognizer: Recognizer) -> None:
    good = grey(line_image("alone"))
    out = recognizer.recognize([good, np.zeros((0, 5), np.uint8), good])
    assert isinstance(out[1], InvalidInput)
    assert not isinstance(out[0], Exception) and out[0].text == out[2].text


def test_a_blank_crop_reads_as_empty(recognizer: Recognizer) -> None:
    [blank] = recognizer.recognize([np.full((40, 300), 255, np.uint8)])
    assert not isinstance(blank, Exception) and blank.text == ""
