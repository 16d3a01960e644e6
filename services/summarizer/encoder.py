"""Sentence embeddings from a BERT-family encoder: mean-pooled, L2-normalized.

The encoder sees every sentence of a whole batch of documents at once, sorted by length so
each forward pass pads as little as possible. Sentences are cut to ``max_tokens`` tokens: the
opening words carry a sentence's topic, and attention cost grows with the square of length.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from ..common.torch_device import autocast_dtype, resolve_device

log = logging.getLogger(__name__)


class SentenceEncoder:
    """Embed sentences with a BERT-family checkpoint on disk (no hub access)."""

    def __init__(
        self,
        model_path: Path,
        *,
        device: str = "auto",
        precision: str = "auto",
        max_tokens: int = 48,
        batch_size: int = 64,
    ) -> None:
        self.model_path = model_path
        self.device = resolve_device(device)
        self.dtype = autocast_dtype(self.device, precision)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        if not (model_path / "config.json").is_file():
            raise FileNotFoundError(f"no model checkpoint (config.json) in {model_path}")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(model_path), local_files_only=True)
        self.model.eval().to(self.device)
        self.dim = int(self.model.config.hidden_size)

    @property
    def precision(self) -> str:
        """The compute precision in use: fp32, bf16 or fp16."""
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def encode(self, sentences: list[str]) -> np.ndarray:
        """Embeddings of ``sentences`` as float32 [N, dim], each row of unit length."""
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        if not sentences:
            return out
        # Longest first: the first batch shows the peak memory, and padding stays small.
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        with torch.inference_mode(), self._autocast():
            for lo in range(0, len(order), self.batch_size):
                idx = order[lo : lo + self.batch_size]
                enc = self.tokenizer(
                    [sentences[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**enc).last_hidden_state.float()
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[idx] = pooled.cpu().numpy()
        return out
