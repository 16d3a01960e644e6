"""Ranking: directed centrality and MMR selection, on hand-made similarity matrices."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from docsum.summarizer.rank import RankConfig, centrality, select
from docsum.summarizer.settings import SummarizerSettings
from docsum.summarizer.summarize import summary_length


def _unit(rows: list[list[float]]) -> np.ndarray:
    m = np.array(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_a_sentence_that_later_text_elaborates_on_is_central() -> None:
    # 0 introduces the topic that 2 and 3 develop; 1 is off-topic.
    emb = _unit([[1, 0.1, 0], [0, 0, 1], [0.9, 0.3, 0], [0.95, 0.2, 0.05]])
    scores = centrality(emb @ emb.T, RankConfig(threshold=0.0))
    assert int(np.argmax(scores)) == 0
    assert scores[1] < scores[0]
    assert scores.min() >= 0.0 and scores.max() <= 1.0


def test_backward_weight_penalises_repeating_earlier_text() -> None:
    emb = _unit([[1, 0], [1, 0.05], [0, 1]])
    sim = emb @ emb.T
    forward_only = centrality(sim, RankConfig(backward_weight=0.0, threshold=0.0))
    directed = centrality(sim, RankConfig(backward_weight=-2.0, threshold=0.0))
    assert directed[1] < forward_only[1] or directed[1] == 0.0


def test_mmr_skips_a_near_duplicate_and_returns_document_order() -> None:
    emb = _unit([[1, 0, 0], [0.0, 1, 0], [1, 0.01, 0], [0, 0, 1]])
    sim = emb @ emb.T
    scores = np.array([1.0, 0.5, 0.95, 0.4], dtype=np.float32)
    words = [10, 10, 10, 10]
    greedy = select(scores, sim, 2, words, RankConfig(redundancy=0.0))
    diverse = select(scores, sim, 2, words, RankConfig(redundancy=0.5))
    assert greedy == [0, 2]
    assert diverse == [0, 1]


def test_short_fragments_are_picked_only_when_nothing_else_is_left() -> None:
    sim = np.eye(3, dtype=np.float32)
    scores = np.array([1.0, 0.2, 0.1], dtype=np.float32)
    assert select(scores, sim, 1, [2, 12, 12], RankConfig(min_words=5)) == [1]
    assert select(scores, sim, 3, [2, 12, 12], RankConfig(min_words=5)) == [0, 1, 2]


def test_one_sentence_is_its_own_summary() -> None:
    assert centrality(np.ones((1, 1), dtype=np.float32), RankConfig()).tolist() == [1.0]
    assert select(np.ones(1), np.ones((1, 1)), 3, [1], RankConfig()) == [0]


def test_summary_length_takes_the_tighter_limit() -> None:
    assert summary_length(20, None, None, default=3) == 3
    assert summary_length(2, None, None, default=3) == 2
    assert summary_length(20, 5, None, default=3) == 5
    assert summary_length(20, None, 0.5, default=3) == 10
    assert summary_length(20, 4, 0.5, default=3) == 4
    assert summary_length(20, None, 0.01, default=3) == 1


def test_pieces_of_a_quotation_are_picked_only_when_nothing_else_is_left() -> None:
    sim = np.eye(3, dtype=np.float32)
    scores = np.array([1.0, 0.2, 0.1], dtype=np.float32)
    fragments = [True, False, False]
    assert select(scores, sim, 1, [12, 12, 12], RankConfig(), fragments) == [1]
    assert select(scores, sim, 3, [12, 12, 12], RankConfig(), fragments) == [0, 1, 2]
    off = RankConfig(quote_fragments_last=False)
    assert select(scores, sim, 1, [12, 12, 12], off, fragments) == [0]


def test_documents_rank_with_the_knobs_for_their_length() -> None:
    settings = SummarizerSettings()
    assert settings.rank_config(10) is settings.rank_short
    assert settings.rank_config(11) is settings.rank and settings.rank_config(60) is settings.rank
    assert settings.rank_config(61) is settings.rank_long
    # Articles keep the order penalty that carries the lead; papers and reports do not.
    assert settings.rank.backward_weight < 0 and settings.rank_long.backward_weight == 0
    with pytest.raises(ValidationError, match="long_document_sentences"):
        SummarizerSettings(long_document_sentences=5)
