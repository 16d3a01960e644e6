"""The sentence encoder in int8 on CPU, through ONNX Runtime (``precision=int8``).

At load, the checkpoint's encoder with its mean pooling and L2 normalization is exported to
ONNX (fp32) and its matrix products are quantized dynamically: weights int8 per output
channel, activations uint8 with one scale per call, computed as the call runs. ONNX Runtime's
integer kernels (AVX512-VNNI here) then run the dense layers at ~1.35× our bf16 torch path
on whole CNN/DM articles (`bench/summarize_speed.py`). Nothing is downloaded or cached: the
export and quantization take a few seconds, in a temporary folder, once per process.

What it costs (`bench/summarize_quality.py --precision int8`, README): embeddings at cosine
0.992 of fp32's (lowest 0.95); the same summary sentences for 88 % of CNN/DM articles and
94 % of SciTLDR abstracts; ROUGE-1 within the dev sets' noise of bf16's, slightly lower on
average. Because an activation scale covers the whole forward pass, a sentence's embedding
depends a little on the other sentences it is batched with: under concurrent load, the same
text can, rarely, come back with a different pick. That is why bf16 stays the default.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)


class _Pooled(torch.nn.Module):
    """The encoder, mean-pooled over real tokens and normalized: what gets exported."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=-1)


def quantized_session(model: torch.nn.Module, threads: int) -> object:
    """An ONNX Runtime session of ``model`` (fp32, on CPU) with int8 matrix products."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    example = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
    axes = {"sentences": 0, "tokens": 1}
    # The exporter's and the quantizer's advice (to the root logger) is for their authors.
    quiet = _DropFrom("onnxruntime")
    logging.getLogger().addFilter(quiet)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="docsum-int8-") as tmp,
            warnings.catch_warnings(),
            torch.inference_mode(),
        ):
            warnings.simplefilter("ignore")
            fp32, int8 = Path(tmp) / "encoder.onnx", Path(tmp) / "encoder.int8.onnx"
            torch.onnx.export(
                _Pooled(model.float().cpu().eval()),
                example,
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={
                    "input_ids": {i: n for n, i in axes.items()},
                    "attention_mask": {i: n for n, i in axes.items()},
                    "embedding": {0: "sentences"},
                },
                opset_version=17,
                dynamo=False,
            )
            quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads  # 0: one per physical core
            options.log_severity_level = 3  # its warnings are about graph rewrites it chose
            session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
    finally:
        logging.getLogger().removeFilter(quiet)
    log.info("encoder quantized to int8 (ONNX Runtime %s)", ort.__version__)
    return session


class _DropFrom(logging.Filter):
    """Drops records logged from a package's files (it logs to the root logger)."""

    def __init__(self, package: str) -> None:
        super().__init__()
        self.marker = f"/{package}/"

    def filter(self, record: logging.LogRecord) -> bool:
        return self.marker not in record.pathname


def embed(session: object, ids: list[list[int]], pad: int) -> np.ndarray:
    """Normalized embeddings [N, dim] of token id lists, run padded to the longest."""
    longest = max(len(x) for x in ids)
    input_ids = np.full((len(ids), longest), pad, dtype=np.int64)
    mask = np.zeros((len(ids), longest), dtype=np.int64)
    for row, x in enumerate(ids):
        input_ids[row, : len(x)] = x
        mask[row, : len(x)] = 1
    feeds = {"input_ids": input_ids, "attention_mask": mask}
    (out,) = session.run(None, feeds)  # type: ignore[attr-defined]
    return np.asarray(out, dtype=np.float32)
