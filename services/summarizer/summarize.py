"""The summarizer model: split → embed → rank, for a batch of documents at once.

Every sentence of every document in the batch goes through the encoder in one call (sorted by
length across documents), then each document is ranked on its own. A document that cannot be
summarized gets its own exception in the results; its neighbours are unaffected.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.errors import InvalidInput
from ..common.metrics import stage_timer
from ..common.torch_device import configure_runtime
from .encoder import SentenceEncoder
from .rank import centrality, select
from .sentences import Sentence, normalize, split_sentences
from .settings import SummarizerSettings

log = logging.getLogger(__name__)

#: Bumped when the method (not the encoder) changes what summaries come out.
METHOD_VERSION = "pacsum-mmr-3"


@dataclass(frozen=True)
class SummaryRequest:
    """One document to summarize and how long its summary may be."""

    text: str
    max_sentences: int | None = None
    ratio: float | None = None


@dataclass(frozen=True)
class ScoredSentence:
    index: int
    text: str
    score: float


@dataclass(frozen=True)
class Summary:
    """The chosen sentences in document order."""

    sentences: list[ScoredSentence]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


def summary_length(n: int, max_sentences: int | None, ratio: float | None, default: int) -> int:
    """Sentences to pick from ``n``: the tighter of max_sentences and ratio·n, at least 1."""
    k = default if max_sentences is None and ratio is None else n
    if max_sentences is not None:
        k = min(k, max_sentences)
    if ratio is not None:
        k = min(k, max(1, math.ceil(ratio * n)))
    return max(1, min(k, n))


def _weights_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        f = path / name
        if f.is_file():
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:12]


class Summarizer:
    """Extractive summarizer over a BERT-family sentence encoder."""

    def __init__(self, settings: SummarizerSettings) -> None:
        self.settings = settings
        self.name = settings.model_name
        self.version = METHOD_VERSION
        self.encoder: SentenceEncoder | None = None

    @property
    def device(self) -> str:
        return str(self.encoder.device) if self.encoder else self.settings.device

    def load(self) -> None:
        """Load the encoder from disk; the version names the exact weights."""
        configure_runtime(self.settings.torch_threads, self.settings.keep_freed_memory)
        path = self.settings.resolved_model_path()
        self.encoder = SentenceEncoder(
            path,
            device=self.settings.device,
            precision=self.settings.precision,
            max_tokens=self.settings.max_tokens,
            batch_size=self.settings.encode_batch_size,
            batch_tokens=self.settings.encode_batch_tokens,
            threads=self.settings.torch_threads,
        )
        self.version = f"{METHOD_VERSION}+{_weights_digest(path)}"
        log.info(
            "encoder loaded",
            extra={"path": str(path), "device": self.device, "precision": self.encoder.precision},
        )

    def warmup(self) -> None:
        """Run a real batch once so the first request does not pay for lazy initialisation."""
        text = (
            "The council approved the new budget on Tuesday. Spending on schools rises by "
            "four per cent. Critics said the plan ignores transport. The mayor disagreed."
        )
        for result in self.summarize_batch([SummaryRequest(text)] * 4):
            if isinstance(result, BaseException):
                raise result

    def summarize_batch(self, requests: list[SummaryRequest]) -> list[Summary | Exception]:
        """Summarize each request; a failure is returned in its place, not raised."""
        if self.encoder is None:
            raise RuntimeError("summarize_batch before load()")
        limit = self.settings.max_document_sentences
        with stage_timer(self.name, "split"):
            docs = [split_sentences(normalize(r.text), limit) for r in requests]
        flat = [s.text for doc in docs for s in doc]
        with stage_timer(self.name, "embed"):
            emb = self.encoder.encode(flat)
        results: list[Summary | Exception] = []
        offset = 0
        with stage_timer(self.name, "rank"):
            for request, doc in zip(requests, docs, strict=True):
                vectors = emb[offset : offset + len(doc)]
                offset += len(doc)
                try:
                    results.append(self._rank(request, doc, vectors))
                except Exception as exc:  # one document's failure stays its own
                    results.append(exc)
        return results

    def _rank(self, request: SummaryRequest, doc: list[Sentence], vectors: np.ndarray) -> Summary:
        if not doc:
            raise InvalidInput("the text has no sentence to summarize (no letters or digits)")
        k = summary_length(
            len(doc), request.max_sentences, request.ratio, self.settings.default_max_sentences
        )
        config = self.settings.rank_config(len(doc))
        sim = vectors @ vectors.T
        scores = centrality(sim, config)
        words, fragments = [s.words for s in doc], [s.quote_fragment for s in doc]
        chosen = select(scores, sim, k, words, config, fragments)
        return Summary([ScoredSentence(i, doc[i].text, round(float(scores[i]), 4)) for i in chosen])
