"""CRNN line recognizer: conv features → BiLSTM → per-column class log-probs for CTC.

Input is a batch of grey line crops normalized to ``height`` pixels (dark text on light
background, values in [0, 1]); output is ``[T, B, C]`` log-probabilities with
``T = W // WIDTH_DOWNSAMPLE``. Pure torch/numpy/OpenCV: no web framework here.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from .charset import CHARS, Charset

WIDTH_DOWNSAMPLE = 4  # output frames per input pixel column: 1 frame every 4 px
MAX_WIDTH = 4096  # px after height normalization; longer crops are squeezed to this


@dataclasses.dataclass(frozen=True)
class CRNNConfig:
    """Architecture of a :class:`CRNN`; stored in every checkpoint.

    height: input height in px. channels: output channels of the conv blocks; the first two
    blocks halve height and width, every later one halves the height only, until the height is
    ``height / 2**len(channels)`` rows (>= 1). hidden: LSTM units per direction.
    """

    height: int = 32
    channels: tuple[int, ...] = (32, 64, 96, 128, 160)
    hidden: int = 128
    lstm_layers: int = 2
    num_classes: int = len(CHARS) + 1
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CRNNConfig:
        return cls(**{**d, "channels": tuple(d["channels"])})


def _block(cin: int, cout: int, pool: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(pool, pool),
    )


class CRNN(nn.Module):
    """Conv feature extractor + 2-layer BiLSTM + linear classifier (see :class:`CRNNConfig`)."""

    def __init__(self, config: CRNNConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or CRNNConfig()
        rows = cfg.height >> len(cfg.channels)
        if rows < 1 or cfg.height % (1 << len(cfg.channels)):
            raise ValueError(f"height {cfg.height} must be divisible by 2**{len(cfg.channels)}")
        blocks, cin = [], 1
        for i, cout in enumerate(cfg.channels):
            # Width is pooled only in the first two blocks: a 4 px frame keeps >= 2 frames for
            # the narrowest glyphs (i, l, 1 at 32 px height) so CTC can fit double letters.
            blocks.append(_block(cin, cout, (2, 2) if i < 2 else (2, 1)))
            cin = cout
        self.features = nn.Sequential(*blocks)
        self.proj = nn.Linear(cin * rows, 2 * cfg.hidden)
        self.rnn = nn.LSTM(
            2 * cfg.hidden,
            cfg.hidden,
            num_layers=cfg.lstm_layers,
            bidirectional=True,
            dropout=cfg.dropout if cfg.lstm_layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * cfg.hidden, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, 1, H, W]`` in [0, 1], dark on light → log-probs ``[W // 4, B, C]``."""
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != self.config.height:
            raise ValueError(f"expected [B, 1, {self.config.height}, W], got {list(x.shape)}")
        # Ink = 1, paper (and batch padding) = 0, so padding adds nothing to the features.
        f = self.features(1.0 - x)  # [B, C, rows, T]
        b, c, h, t = f.shape
        f = f.permute(3, 0, 1, 2).reshape(t, b, c * h)  # [T, B, C*rows]
        f = torch.relu(self.proj(f))
        f, _ = self.rnn(self.drop(f))
        return torch.log_softmax(self.head(self.drop(f)).float(), dim=-1)


def fuse_for_inference(model: CRNN) -> CRNN:
    """Fold each BatchNorm into the conv before it (same outputs in eval mode, fewer passes
    over memory, so faster). Returns ``model`` changed in place, in eval mode."""
    model.eval()
    for block in model.features:
        assert isinstance(block, nn.Sequential)  # every feature block is a _block()
        conv, bn = block[0], block[1]
        if not isinstance(bn, nn.BatchNorm2d):
            continue
        assert isinstance(conv, nn.Conv2d)
        # track_running_stats=True (the default): the running statistics exist.
        assert bn.running_mean is not None and bn.running_var is not None
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding=1, bias=True)
        assert fused.bias is not None  # bias=True
        with torch.no_grad():
            fused.weight.copy_(conv.weight * scale[:, None, None, None])
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
        block[0], block[1] = fused, nn.Identity()
    return model


def channels_last(model: CRNN) -> CRNN:
    """``model`` with its conv weights in channels-last layout, where oneDNN's convolutions run
    much faster than on NCHW (docs/decisions.md, "BatchNorm folded, channels-last, bf16").
    Feed it ``x.contiguous(memory_format=torch.channels_last)``."""
    return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def output_lengths(widths: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """Frames the model emits for inputs ``widths`` px wide (int64 tensor)."""
    return torch.as_tensor(widths, dtype=torch.long) // WIDTH_DOWNSAMPLE


def preprocess_line(gray: np.ndarray, height: int = 32) -> np.ndarray:
    """Grey line crop (uint8 ``[h, w]``, dark text on light) → float32 ``[height, W]`` in [0, 1].

    Keeps the aspect ratio (W = w * height / h, at least 4 px, at most ``MAX_WIDTH``) and
    stretches the contrast so the darkest pixel is 0 and the lightest 1: scans vary in ink
    and paper grey and the network should not have to learn that.
    """
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_RGB2GRAY if gray.shape[2] == 3 else cv2.COLOR_RGBA2GRAY)
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a non-empty 2-D grey image, got shape {gray.shape}")
    h, w = gray.shape
    new_w = int(min(MAX_WIDTH, max(4, round(w * height / h))))
    # INTER_AREA averages when shrinking (no aliasing of thin strokes); LINEAR when enlarging.
    interp = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
    img = cv2.resize(gray, (new_w, height), interpolation=interp).astype(np.float32)
    lo, hi = float(img.min()), float(img.max())
    if hi - lo < 8.0:  # blank crop: keep it white rather than amplify noise
        return np.ones_like(img)
    return (img - lo) / (hi - lo)


def batch_lines(lines: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad preprocessed lines (``[H, W_i]`` float) with white to one batch.

    Returns ``(x [B, 1, H, W_max], widths [B])``; ``W_max`` is rounded up to a multiple of
    ``WIDTH_DOWNSAMPLE`` so every line gets ``ceil``-free, exact frame counts.
    """
    if not lines:
        raise ValueError("empty batch")
    h = lines[0].shape[0]
    widths = [ln.shape[1] for ln in lines]
    wmax = -(-max(widths) // WIDTH_DOWNSAMPLE) * WIDTH_DOWNSAMPLE
    x = np.ones((len(lines), 1, h, wmax), dtype=np.float32)
    for i, ln in enumerate(lines):
        x[i, 0, :, : ln.shape[1]] = ln
    return torch.from_numpy(x), torch.as_tensor(widths, dtype=torch.long)


def width_buckets(widths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar width (sorted), so little compute goes to padding.

    The batches are of even size (33 crops at 32 a batch: 17 + 16, not 32 + 1).
    """
    order = sorted(range(len(widths)), key=lambda i: widths[i])
    if not order:
        return []
    passes = -(-len(order) // batch_size)
    base, extra = divmod(len(order), passes)
    bounds = itertools.accumulate((base + (p < extra) for p in range(passes)), initial=0)
    return [order[a:b] for a, b in itertools.pairwise(bounds)]


def save_checkpoint(
    path: str | os.PathLike[str],
    model: CRNN,
    charset: Charset,
    meta: dict[str, Any] | None = None,
    half: bool = False,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``{config, charset, state_dict, meta, **extra}`` atomically (temp file + rename).

    ``half`` stores float tensors as fp16 (inference export: half the bytes, same accuracy).
    """
    sd = {
        k: (v.half() if half and v.is_floating_point() else v)
        for k, v in model.state_dict().items()
    }
    ckpt = {
        "config": model.config.to_dict(),
        "charset": charset.chars,
        "state_dict": sd,
        "meta": dict(meta or {}),
        **(extra or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(ckpt, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; weights are read by other users/containers
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[CRNN, Charset, dict[str, Any]]:
    """Load a :func:`save_checkpoint` file → ``(model in eval mode, charset, checkpoint dict)``.

    Weights come back as fp32 whatever they were stored as.
    """
    # weights_only: a checkpoint is data (tensors, dicts, strings), never code to run.
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    model = CRNN(CRNNConfig.from_dict(ckpt["config"]))
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    )
    model.eval()
    return model, Charset(ckpt["charset"]), ckpt
