"""OCR line recognizer: alphabet, CRNN network, CTC decoding."""

from .charset import DEFAULT_CHARSET, Charset, to_ascii
from .crnn import (
    CRNN,
    WIDTH_DOWNSAMPLE,
    CRNNConfig,
    batch_lines,
    fuse_for_inference,
    load_checkpoint,
    output_lengths,
    preprocess_line,
    save_checkpoint,
    width_buckets,
)
from .ctc import Decoded, greedy_decode

__all__ = [
    "CRNN",
    "DEFAULT_CHARSET",
    "WIDTH_DOWNSAMPLE",
    "CRNNConfig",
    "Charset",
    "Decoded",
    "batch_lines",
    "fuse_for_inference",
    "greedy_decode",
    "load_checkpoint",
    "output_lengths",
    "preprocess_line",
    "save_checkpoint",
    "to_ascii",
    "width_buckets",
]
