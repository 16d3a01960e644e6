"""The sentence encoder on the real all-MiniLM-L6-v2: packed forward, batching, precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from docsum.summarizer.encoder import SentenceEncoder
from docsum.summarizer.settings import bundled_model_path

pytestmark = pytest.mark.slow  # loads the real encoder (and exports it to ONNX for int8)

SENTENCES = [
    "The council approved the budget on Tuesday.",
    "Spending on schools rises by four per cent, the largest increase in a decade.",
    "Critics said the plan ignores transport.",
    "Yes.",
    "The mayor, who faces re-election next spring, said the city could not afford to wait "
    "any longer for the state to fund the repairs that residents have asked for since 2019.",
    "Rain is expected on Friday.",
]


@pytest.fixture(scope="module")
def fp32() -> SentenceEncoder:
    return SentenceEncoder(bundled_model_path(), device="cpu", precision="fp32")


def _padded(enc: SentenceEncoder, sentences: list[str]) -> np.ndarray:
    packed, enc.packed = enc.packed, None
    try:
        return enc.encode(sentences)
    finally:
        enc.packed = packed


def test_packed_forward_matches_the_models_own(fp32: SentenceEncoder) -> None:
    assert fp32.packed is not None  # a BERT checkpoint runs packed
    packed = fp32.encode(SENTENCES)
    padded = _padded(fp32, SENTENCES)
    assert packed.shape == (len(SENTENCES), fp32.dim)
    np.testing.assert_allclose(packed, padded, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(packed, axis=1), 1.0, atol=1e-5)
    # And the model's own forward, straight from transformers, on one sentence.
    ids = fp32.tokenizer([SENTENCES[1]], return_tensors="pt")
    with torch.inference_mode():
        own = fp32.model(**ids).last_hidden_state.mean(1)
    own = torch.nn.functional.normalize(own, dim=-1).numpy()
    np.testing.assert_allclose(packed[1], own[0], atol=2e-5)


def test_embeddings_do_not_depend_on_batch_companions(fp32: SentenceEncoder) -> None:
    alone = fp32.encode([SENTENCES[4]])
    together = fp32.encode(SENTENCES)
    np.testing.assert_allclose(alone[0], together[4], atol=2e-5)
    similar = float(together[0] @ together[2])
    unrelated = float(together[0] @ together[5])
    assert similar > unrelated  # the council's plan is closer to critics of it than to rain


def test_batches_respect_the_token_and_sentence_limits(fp32: SentenceEncoder) -> None:
    lengths = [5, 40, 12, 40, 3, 25, 25, 7]
    fp32.batch_tokens, fp32.batch_size = 60, 3
    try:
        batches = fp32.batches(lengths)
    finally:
        fp32.batch_tokens, fp32.batch_size = 1024, 64
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or sum(lengths[i] for i in b) <= 60
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)


def test_bf16_weights_stay_close_to_fp32(fp32: SentenceEncoder) -> None:
    bf16 = SentenceEncoder(bundled_model_path(), device="cpu", precision="bf16")
    assert bf16.precision == "bf16"
    assert next(bf16.model.parameters()).dtype == torch.bfloat16  # held in bf16, not cast
    cosine = (bf16.encode(SENTENCES) * fp32.encode(SENTENCES)).sum(1)
    assert cosine.min() > 0.995


def test_int8_runs_through_onnx_runtime_close_to_fp32(fp32: SentenceEncoder) -> None:
    int8 = SentenceEncoder(bundled_model_path(), device="cpu", precision="int8")
    assert int8.precision == "int8" and int8.packed is None and int8.batch_tokens == 2048
    got = int8.encode(SENTENCES)
    assert got.shape == (len(SENTENCES), fp32.dim) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    cosine = (got * fp32.encode(SENTENCES)).sum(1)
    assert cosine.min() > 0.95 and cosine.mean() > 0.98
    # Alone, a sentence is quantized by its own range: close to itself among companions.
    assert float(int8.encode([SENTENCES[4]])[0] @ got[4]) > 0.98
    assert int8.encode([]).shape == (0, fp32.dim)


def test_int8_is_refused_on_cuda() -> None:
    with pytest.raises(ValueError, match="int8 runs on the CPU"):
        SentenceEncoder(bundled_model_path(), device="cuda", precision="int8")
