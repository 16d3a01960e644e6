"""Sentence embeddings from a BERT-family encoder: mean-pooled, L2-normalized.

The encoder sees every sentence of a whole batch of documents at once. They are tokenized
once, sorted by token count and cut into forward passes of at most ``batch_tokens`` tokens
(and ``batch_size`` sentences). BERT checkpoints run packed (:mod:`.packed`: the dense layers
see no padding at all); any other architecture runs padded to the longest of its pass, which
sorting by tokens (not characters) keeps small. Sentences are cut to ``max_tokens`` tokens:
the opening words carry a sentence's topic. The weights are held in the compute precision
(bf16 on CPUs that have it, fp16 on CUDA): autocast would re-cast every weight on every call.
``precision=int8``
runs the encoder through ONNX Runtime instead (:mod:`.int8`: faster, slightly less exact).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from ..common.torch_device import autocast_dtype, resolve_device
from . import int8, packed

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
        batch_tokens: int | None = None,
        threads: int = 0,
    ) -> None:
        self.model_path = model_path
        if precision == "int8":
            if device not in ("auto", "cpu"):
                raise ValueError("precision int8 runs on the CPU (ONNX Runtime); use fp16 on CUDA")
            device = "cpu"
        self.device = resolve_device(device)
        self.dtype = None if precision == "int8" else autocast_dtype(self.device, precision)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens or (2048 if precision == "int8" else 1024)
        if not (model_path / "config.json").is_file():
            raise FileNotFoundError(f"no model checkpoint (config.json) in {model_path}")
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
        # int8 exports the model: plain attention is the graph ONNX Runtime fuses (int8.py).
        eager = {"attn_implementation": "eager"} if precision == "int8" else {}
        self.model = AutoModel.from_pretrained(str(model_path), local_files_only=True, **eager)
        self.model.eval().to(self.device)
        if self.dtype is not None:
            self.model.to(self.dtype)
        self.dim = int(self.model.config.hidden_size)
        self.int8 = int8.quantized_session(self.model, threads) if precision == "int8" else None
        packs = self.int8 is None and packed.supports(self.model)
        self.packed = packed.PackedBert(self.model) if packs else None

    @property
    def precision(self) -> str:
        """The compute precision in use: fp32, bf16, fp16 or int8."""
        if self.int8 is not None:
            return "int8"
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices of the sentences for each forward pass: longest first, each pass at most
        ``batch_size`` sentences and ``batch_tokens`` tokens (counting padding unless packed)."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        out: list[list[int]] = []
        tokens = 0
        for i in order:
            # The first sentence of a pass is its longest: it sets the padded length.
            cost = lengths[i] if self.packed else lengths[out[-1][0]] if out else lengths[i]
            if out and len(out[-1]) < self.batch_size and tokens + cost <= self.batch_tokens:
                out[-1].append(i)
                tokens += cost
                continue
            out.append([i])
            tokens = lengths[i]
        return out

    def encode(self, sentences: list[str]) -> np.ndarray:
        """Embeddings of ``sentences`` as float32 [N, dim], each row of unit length."""
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        if not sentences:
            return out
        ids = self.tokenizer(sentences, truncation=True, max_length=self.max_tokens)["input_ids"]
        pad = int(self.tokenizer.pad_token_id or 0)
        with torch.inference_mode():
            for idx in self.batches([len(x) for x in ids]):
                if self.int8 is not None:
                    out[idx] = int8.embed(self.int8, [ids[i] for i in idx], pad)
                    continue
                if self.packed:
                    pooled = self.packed.mean_pooled([ids[i] for i in idx], self.device)
                    out[idx] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
                    continue
                longest = len(ids[idx[0]])
                input_ids = torch.full((len(idx), longest), pad, dtype=torch.long)
                mask = torch.zeros((len(idx), longest), dtype=torch.long)
                for row, i in enumerate(idx):
                    input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                    mask[row, : len(ids[i])] = 1
                hidden = self.model(
                    input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
                ).last_hidden_state.float()
                weights = mask.to(self.device).unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[idx] = pooled.cpu().numpy()
        return out
