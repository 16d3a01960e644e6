"""Greedy (best-path) CTC decoding with a confidence per character and per line.

Confidence, defined once here: each emitted character's probability is the highest
frame probability over the run of frames that emitted it; a line's confidence is the
**minimum** over its characters (one doubtful character makes the line doubtful, which is
what a reviewer wants flagged). A line with no characters gets the mean blank probability
over its frames (how sure the model is that the crop is empty).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from .charset import BLANK, Charset


@dataclasses.dataclass(frozen=True)
class Decoded:
    """One decoded line: text, line confidence in [0, 1], per-character probabilities."""

    text: str
    confidence: float
    char_probs: tuple[float, ...]

    @property
    def mean_char_prob(self) -> float:
        """How sure the reading is on average: mean per-character probability (0 if empty)."""
        return sum(self.char_probs) / len(self.char_probs) if self.char_probs else 0.0


def greedy_decode(
    log_probs: torch.Tensor,
    charset: Charset,
    lengths: torch.Tensor | Sequence[int] | None = None,
) -> list[Decoded]:
    """Decode ``log_probs`` ``[T, B, C]`` (log-softmax output) → one :class:`Decoded` per line.

    ``lengths`` (``[B]``, frames) marks how many frames of each line are real; frames past it
    come from batch padding and are ignored. Default: all ``T`` frames.
    """
    if log_probs.dim() != 3:
        raise ValueError(f"expected [T, B, C] log-probs, got shape {list(log_probs.shape)}")
    t_max, batch, _ = log_probs.shape
    best_lp, best = log_probs.detach().float().max(dim=-1)  # [T, B]
    probs = best_lp.exp().T.cpu().numpy()  # [B, T]
    ids = best.T.cpu().numpy()
    lens = [t_max] * batch if lengths is None else [min(int(n), t_max) for n in lengths]
    out = []
    for b in range(batch):
        n = lens[b]
        seq, p = ids[b, :n], probs[b, :n]
        if n == 0:
            out.append(Decoded("", 1.0, ()))
            continue
        # A run starts where the class changes; runs of blank emit nothing.
        starts = np.flatnonzero(np.r_[True, seq[1:] != seq[:-1]])
        run_max = np.maximum.reduceat(p, starts)
        keep = seq[starts] != BLANK
        chars = seq[starts][keep]
        cp = run_max[keep]
        if len(chars) == 0:
            out.append(Decoded("", float(p.mean()), ()))
        else:
            out.append(
                Decoded(
                    charset.decode(chars.tolist()), float(cp.min()), tuple(float(x) for x in cp)
                )
            )
    return out
