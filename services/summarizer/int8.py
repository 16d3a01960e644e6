"""The sentence encoder in int8 on CPU, through ONNX Runtime (``precision=int8``).

At load, the checkpoint's encoder with its mean pooling and L2 normalization is exported to
ONNX (fp32), fused by ONNX Runtime's BERT optimizer, and its matrix products are quantized
dynamically: weights int8 per output channel, activations uint8 with one scale per call,
computed as the call runs. ONNX Runtime's integer kernels (AVX512-VNNI) then run it faster
than the bf16 torch path, slightly less exactly. Nothing is downloaded or cached: the export
and quantization take a few seconds, in a temporary folder, once per process.

Because an activation scale covers the whole forward pass, a sentence's embedding depends a
little on the sentences batched with it: under concurrent load the same text can, rarely,
come back with another pick. That is why bf16 stays the default (docs/decisions.md, "int8
through ONNX Runtime, as an option").
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..common.torch_device import usable_cpus

if TYPE_CHECKING:
    from transformers import PreTrainedModel

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


def quantized_session(model: PreTrainedModel, threads: int) -> object:
    """An ONNX Runtime session of ``model`` (a transformers encoder), int8 on CPU.

    Load the model with plain attention (``attn_implementation="eager"``): that graph is what
    ONNX Runtime's BERT optimizer recognizes and fuses (attention, embedding and skip layer
    norms, bias + GELU), which runs faster than the unfused one. Then its matrix products are
    quantized.
    """
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        raise RuntimeError(
            "precision int8 runs on ONNX Runtime, which is not installed: install "
            "docsum[summarizer,int8] (images: build with --build-arg EXTRAS=summarizer,int8)"
        )
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    config = model.config
    example = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
    axes = {"sentences": 0, "tokens": 1}
    # The exporter's, optimizer's and quantizer's chatter is for their authors (its loggers
    # have bare names, like "fusion_base"): our handlers drop what comes from their files.
    quiet = _DropFrom("onnxruntime")
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="docsum-int8-") as tmp,
            warnings.catch_warnings(),
            torch.inference_mode(),
        ):
            warnings.simplefilter("ignore")
            plain, fused, int8 = (
                Path(tmp) / f"encoder.{n}.onnx" for n in ("fp32", "fused", "int8")
            )
            torch.onnx.export(
                _Pooled(model.float().cpu().eval()),
                example,
                str(plain),
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
            optimizer.optimize_model(
                str(plain),
                model_type="bert",
                num_heads=int(config.num_attention_heads),
                hidden_size=int(config.hidden_size),
            ).save_model_to_file(str(fused))
            quantize_dynamic(
                str(fused),
                str(int8),
                weight_type=QuantType.QInt8,
                per_channel=True,
                # The fused ops are ONNX Runtime's own: their outputs' types are not inferred.
                extra_options={"DefaultTensorType": 1},  # float
            )
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads or usable_cpus()
            options.log_severity_level = 3  # its warnings are about graph rewrites it chose
            session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)
    log.info("encoder quantized to int8 (ONNX Runtime %s)", ort.__version__)
    return session


class _DropFrom(logging.Filter):
    """Drops records logged from a package's files."""

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
