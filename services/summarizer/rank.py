"""Which sentences make the summary: directed centrality (PacSum) with redundancy control.

PacSum (Zheng & Lapata, 2019) scores a sentence by its similarity to the *other* sentences,
but directed: similarity to sentences that come after it counts for it (``forward_weight``),
similarity to sentences before it counts against it (``backward_weight`` < 0) — a sentence
that later text elaborates on is central, one that only repeats earlier text is not. Edges
below a threshold, set between the smallest and largest similarity by ``threshold``, are
dropped, so only strong links count. Selection is then greedy MMR: each pick trades
centrality against similarity to what was already picked (``redundancy``); very short
sentences and pieces of a quotation are held back until nothing else is left. Pure numpy.

Three parameter sets are used, by document length (see settings): articles (news, 11–60
sentences) rank best with a strong penalty on repeating earlier text and every edge kept — the
text's own order carries the lead; short documents (abstracts, a few sentences) with no order
penalty and only strong edges kept, so the sentence most of the others elaborate on wins; long
ones (papers, reports, over 60 sentences) with no order penalty either — their later sections
restate and develop the introduction's claims, and those restatements are often what a
summary needs — and the weaker edges dropped. How the sets were picked and checked:
docs/decisions.md, "Three ranking sets by document length".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankConfig:
    """The ranking knobs (each is a setting: ``DOCSUM_SUMMARIZER_RANK__<NAME>``)."""

    #: λ2: weight of edges to later sentences.
    forward_weight: float = 1.0
    #: λ1: weight of edges to earlier sentences (negative: repeating earlier text costs).
    backward_weight: float = -2.0
    #: β in [0, 1): edges below min + β·(max − min) of a document's similarities are dropped.
    threshold: float = 0.0
    #: MMR trade-off in [0, 1]: 0 ignores redundancy, 1 picks only for novelty.
    redundancy: float = 0.3
    #: Sentences with fewer words are picked only when nothing else is left.
    min_words: int = 5
    #: Pieces of a quotation cut by the sentence splitter, too (sentences.quote_fragment).
    quote_fragments_last: bool = True


def centrality(sim: np.ndarray, cfg: RankConfig) -> np.ndarray:
    """Directed centrality of each sentence from its [n, n] cosine similarities, in [0, 1]."""
    n = sim.shape[0]
    if n == 1:
        return np.ones(1, dtype=np.float32)
    off_diagonal = sim[~np.eye(n, dtype=bool)]
    lo, hi = float(off_diagonal.min()), float(off_diagonal.max())
    edges = np.clip(sim - (lo + cfg.threshold * (hi - lo)), 0.0, None)
    np.fill_diagonal(edges, 0.0)
    later = np.triu(edges, 1).sum(axis=1)
    earlier = np.tril(edges, -1).sum(axis=1)
    raw = cfg.forward_weight * later + cfg.backward_weight * earlier
    span = float(raw.max() - raw.min())
    if span <= 1e-12:
        # No structure to go on (e.g. all sentences alike): fall back on order.
        return np.linspace(1.0, 0.0, n, dtype=np.float32)
    return ((raw - raw.min()) / span).astype(np.float32)


def select(
    scores: np.ndarray,
    sim: np.ndarray,
    k: int,
    words: list[int],
    cfg: RankConfig,
    fragments: list[bool] | None = None,
) -> list[int]:
    """Pick ``k`` sentence indices by MMR over ``scores``; returned in document order.

    Sentences under ``cfg.min_words`` words, and those flagged in ``fragments`` (pieces of a
    quotation) when ``cfg.quote_fragments_last``, are picked only when nothing else is left.
    """
    n = len(scores)
    k = max(0, min(k, n))
    flagged = fragments if fragments is not None and cfg.quote_fragments_last else [False] * n
    held_back = [words[i] < cfg.min_words or flagged[i] for i in range(n)]
    eligible = [i for i in range(n) if not held_back[i]]
    spare = [i for i in range(n) if held_back[i]]
    chosen: list[int] = []
    for pool in (eligible, spare):
        pool = list(pool)
        while pool and len(chosen) < k:
            if chosen:
                overlap = sim[np.ix_(pool, chosen)].max(axis=1)
            else:
                overlap = np.zeros(len(pool), dtype=np.float32)
            gain = (1.0 - cfg.redundancy) * scores[pool] - cfg.redundancy * overlap
            best = pool[int(np.argmax(gain))]
            chosen.append(best)
            pool.remove(best)
    return sorted(chosen)
