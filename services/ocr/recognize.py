"""The line recognizer: grey line crops in, text with a confidence out, in batches.

Crops are height-normalized (32 px, aspect kept), sorted by width and cut into forward passes
of similar width, so padding wastes little compute. Runs under ``torch.inference_mode`` with
autocast: fp16 on CUDA, bf16 on CPUs that compute it natively, fp32 otherwise. A crop much
taller than wide is also read turned 90° each way (a rotated line, or a vertical label) and
the surest of the three readings wins. Pure torch/numpy: the HTTP shell is elsewhere.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..common.errors import InvalidInput
from ..common.torch_device import autocast_dtype, resolve_device
from .model.charset import Charset, to_ascii
from .model.crnn import (
    CRNN,
    batch_lines,
    channels_last,
    fuse_for_inference,
    load_checkpoint,
    output_lengths,
    preprocess_line,
    width_buckets,
)
from .model.ctc import Decoded, greedy_decode
from .model.spacing import tidy_spacing

log = logging.getLogger(__name__)

#: A crop this many times taller than wide is also tried turned by ±90°: a turned line of three
#: or more characters is; a lone upright "1" or "I" (about twice as tall as wide) is not, and
#: reading it turned only invites a confident wrong answer (docs/decisions.md, "Tall crops
#: also read turned").
TALL_RATIO = 3.0

#: Line crops per forward pass when not set. On a CPU, 48 reads a typical page in one pass;
#: smaller passes run the LSTM's steps for too few lines (docs/decisions.md, "Width-sorted
#: passes of 48 crops"). A GPU takes every crop of a call at once.
DEFAULT_FORWARD_BATCH = {"cpu": 48, "cuda": 256}


def weights_version(path: Path, meta: dict[str, object]) -> str:
    """``crnn-s<step>+<sha256[:12]>``: which training step, and exactly which bytes."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"crnn-s{meta.get('step', 0)}+{digest}"


def _score(d: Decoded) -> float:
    """How sure a reading is: mean character probability (blank probability when empty)."""
    return d.mean_char_prob if d.char_probs else d.confidence * 0.5


class Recognizer:
    """A CRNN checkpoint loaded once, reading batches of line crops."""

    name = "crnn"

    def __init__(
        self,
        weights: Path,
        *,
        device: str = "auto",
        precision: str = "auto",
        forward_batch: int | None = None,
        try_rotations: bool = True,
        ascii_only: bool = False,
    ) -> None:
        self.weights = Path(weights)
        self.device = resolve_device(device)
        self.dtype = autocast_dtype(self.device, precision)
        self.forward_batch = forward_batch or DEFAULT_FORWARD_BATCH.get(self.device.type, 64)
        self.try_rotations = try_rotations
        self.ascii_only = ascii_only
        self.version = "unloaded"
        self.meta: dict[str, object] = {}
        self._model: CRNN | None = None
        self._charset: Charset | None = None

    @property
    def precision(self) -> str:
        return {torch.float16: "fp16", torch.bfloat16: "bf16", None: "fp32"}[self.dtype]

    def load(self) -> None:
        if not self.weights.is_file():
            raise FileNotFoundError(f"OCR weights not found at {self.weights}")
        model, charset, ckpt = load_checkpoint(self.weights, map_location="cpu")
        self._model = channels_last(fuse_for_inference(model).to(self.device)).eval()
        self._charset = charset
        self.meta = dict(ckpt.get("meta", {}))
        self.version = weights_version(self.weights, self.meta)
        log.info(
            "recognizer loaded",
            extra={
                "weights": str(self.weights),
                "version": self.version,
                "device": str(self.device),
                "precision": self.precision,
                "val_cer": self.meta.get("cer"),
            },
        )

    def recognize(self, crops: Sequence[np.ndarray]) -> list[Decoded | Exception]:
        """Read each crop (uint8 grey ``[h, w]``, dark text on light); errors stay per crop."""
        prepared: list[np.ndarray] = []
        owner: list[int] = []  # prepared index → crop index
        results: list[Decoded | Exception | None] = [None] * len(crops)
        for i, crop in enumerate(crops):
            try:
                variants = self._variants(crop)
            except InvalidInput as exc:
                results[i] = exc
                continue
            for v in variants:
                prepared.append(preprocess_line(v, self._height))
                owner.append(i)
        readings = self._read(prepared)
        best: dict[int, Decoded] = {}
        for i, reading in zip(owner, readings, strict=True):
            if i not in best or _score(reading) > _score(best[i]):
                best[i] = reading
        for i, reading in best.items():
            reading = tidy_spacing(reading)
            if self.ascii_only:
                reading = Decoded(to_ascii(reading.text), reading.confidence, reading.char_probs)
            results[i] = reading
        return [r if r is not None else InvalidInput("crop was not read") for r in results]

    @property
    def _height(self) -> int:
        if self._model is None:
            raise RuntimeError("recognize() before load()")
        return self._model.config.height

    def _variants(self, crop: np.ndarray) -> list[np.ndarray]:
        if not isinstance(crop, np.ndarray) or crop.ndim != 2 or crop.size == 0:
            shape = getattr(crop, "shape", None)
            raise InvalidInput(f"a line crop must be a non-empty grey image, got shape {shape}")
        if crop.dtype != np.uint8:
            crop = np.clip(crop, 0, 255).astype(np.uint8)
        h, w = crop.shape
        if self.try_rotations and h > TALL_RATIO * w:
            return [
                crop,
                np.ascontiguousarray(np.rot90(crop, 1)),
                np.ascontiguousarray(np.rot90(crop, -1)),
            ]
        return [crop]

    def _read(self, lines: list[np.ndarray]) -> list[Decoded]:
        if not lines:
            return []
        assert self._model is not None and self._charset is not None
        out: list[Decoded | None] = [None] * len(lines)
        for bucket in width_buckets([ln.shape[1] for ln in lines], self.forward_batch):
            x, widths = batch_lines([lines[i] for i in bucket])
            with torch.inference_mode():
                x = x.to(self.device, non_blocking=True, memory_format=torch.channels_last)
                if self.dtype is None:
                    log_probs = self._model(x)
                else:
                    with torch.autocast(self.device.type, dtype=self.dtype):
                        log_probs = self._model(x)
            decoded = greedy_decode(log_probs.float().cpu(), self._charset, output_lengths(widths))
            for i, d in zip(bucket, decoded, strict=True):
                out[i] = d
        return [d for d in out if d is not None]
