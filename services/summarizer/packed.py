"""A BERT forward pass over packed sentences: no compute spent on padding in the dense layers.

A batch of sentences of unequal length is usually padded to its longest, and every dense
layer (85 % of BERT's work at sentence length) then runs over the padding too. Here the
tokens of all sentences are laid end to end ([T, hidden]); only attention, which must see one
sentence at a time, scatters them into a padded [B, heads, L, d] block and gathers them back
(docs/decisions.md, "Packed BERT forward").

Uses the weights of a Hugging Face ``BertModel`` as they are (post-LayerNorm BERT: BERT,
MiniLM, all-MiniLM-L6-v2, bge, e5…); :func:`supports` says whether a loaded model is one.
The result matches the model's own forward to rounding (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "relu": F.relu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
}


def supports(model: Any) -> bool:
    """Whether :class:`PackedBert` can run ``model`` (a BERT with absolute positions)."""
    cfg = model.config
    return (
        getattr(cfg, "model_type", "") == "bert"
        and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
        and getattr(cfg, "hidden_act", "") in _ACTIVATIONS
        and hasattr(model, "embeddings")
        and hasattr(model, "encoder")
    )


def _attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """softmax(q·kᵀ/√d + bias)·v, written out: at sentence length (≤ 64 tokens) two batched
    matrix products beat SDPA's fused CPU kernels. ``bias`` is [B·heads, L, L]. The softmax
    writes float32, then is cast back: torch's CPU softmax is slower writing bf16 (same
    probabilities once rounded). See docs/decisions.md, "Attention as two batched matrix
    products"."""
    scores = torch.baddbmm(
        bias,
        q.reshape(-1, q.shape[2], q.shape[3]),
        k.reshape(-1, k.shape[2], k.shape[3]).transpose(1, 2),
        alpha=q.shape[-1] ** -0.5,
    )
    probs = torch.softmax(scores, -1, dtype=torch.float32).to(scores.dtype)
    out = torch.bmm(probs, v.reshape(-1, v.shape[2], v.shape[3]))
    return out.view(q.shape)


class PackedBert:
    """Runs a loaded ``BertModel``'s weights packed; query, key and value are fused into one
    dense layer per block (one matrix product instead of three)."""

    def __init__(self, model: Any) -> None:
        cfg = model.config
        self.model = model
        self.heads = int(cfg.num_attention_heads)
        self.hidden = int(cfg.hidden_size)
        self.act = _ACTIVATIONS[cfg.hidden_act]
        self.qkv: list[tuple[torch.Tensor, torch.Tensor]] = []
        for layer in model.encoder.layer:
            sa = layer.attention.self
            weight = torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]).detach()
            bias = torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]).detach()
            self.qkv.append((weight, bias))

    def mean_pooled(self, ids: list[list[int]], device: torch.device) -> torch.Tensor:
        """Mean of the last hidden states of each token sequence in ``ids`` → float32
        [B, hidden]. ``ids`` are token ids with their special tokens, each non-empty."""
        lengths = [len(x) for x in ids]
        longest = max(lengths)
        flat = torch.tensor([t for x in ids for t in x], dtype=torch.long, device=device)
        positions = torch.tensor([p for n in lengths for p in range(n)], device=device)
        rows = torch.tensor([b for b, n in enumerate(lengths) for _ in range(n)], device=device)
        slots = rows * longest + positions  # where each token sits in the padded [B·L] layout
        keys = (
            torch.arange(longest, device=device)[None, :]
            < torch.tensor(lengths, device=device)[:, None]
        )
        return self._forward(flat, positions, rows, slots, keys[:, None, None, :], len(ids))

    def _forward(
        self,
        flat: torch.Tensor,
        positions: torch.Tensor,
        rows: torch.Tensor,
        slots: torch.Tensor,
        keys: torch.Tensor,
        batch: int,
    ) -> torch.Tensor:
        heads, hidden, model = self.heads, self.hidden, self.model
        d = hidden // heads
        longest = keys.shape[-1]
        emb = model.embeddings
        x = emb.word_embeddings(flat) + emb.position_embeddings(positions)
        x = x + emb.token_type_embeddings(torch.zeros_like(flat))
        x = emb.LayerNorm(x)
        block = x.new_zeros(batch * longest, 3 * hidden)  # padding stays zero across layers
        # Padding keys get -1e4 before the softmax: a weight of 0 in any precision. The bias
        # is laid out for all heads and queries once, not in every layer.
        pad = torch.zeros(keys.shape, dtype=x.dtype, device=x.device).masked_fill(~keys, -1e4)
        pad = pad.expand(-1, heads, longest, -1).reshape(-1, longest, longest)
        for layer, (weight, bias) in zip(model.encoder.layer, self.qkv, strict=True):
            block.index_copy_(0, slots, F.linear(x, weight, bias))
            q, k, v = block.view(batch, longest, 3, heads, d).permute(2, 0, 3, 1, 4).unbind(0)
            ctx = _attention(q, k, v, pad)  # [B, heads, L, d]
            ctx = ctx.transpose(1, 2).reshape(batch * longest, hidden).index_select(0, slots)
            att = layer.attention.output
            x = att.LayerNorm(att.dense(ctx) + x)
            out = layer.output
            x = out.LayerNorm(out.dense(self.act(layer.intermediate.dense(x))) + x)
        sums = torch.zeros(batch, hidden, device=x.device).index_add_(0, rows, x.float())
        counts = torch.bincount(rows, minlength=batch).clamp(min=1)
        return sums / counts[:, None].float()
