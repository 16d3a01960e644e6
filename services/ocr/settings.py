"""The OCR service's settings: environment variables prefixed ``DOCSUM_OCR_``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ..common.settings import BatchSettings, ModelServiceSettings

#: The weights trained by ``docsum train ocr`` and shipped in the package.
BUNDLED_WEIGHTS = Path(__file__).resolve().parent / "weights" / "crnn.pt"


class LineBatchSettings(BatchSettings):
    """The batcher gathers line crops, not requests: one page is tens of them. Each call is
    one forward pass, shared evenly among the requests with lines waiting, so a small request
    waits for the pass running when it arrives, not for a large request's thousands of lines.
    """

    #: Line crops per forward pass; 0: 48 on a CPU (a typical page in one pass), 256 on CUDA.
    max_batch_size: int = Field(0, ge=0, le=1024)
    max_queue_size: int = Field(4096, ge=1)


class OCRSettings(ModelServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DOCSUM_OCR_", env_nested_delimiter="__")

    port: int = Field(8081, ge=1, le=65535)
    #: Scans are large: a 20-page TIFF at 300 dpi is tens of MB.
    max_body_bytes: int = Field(50 * 1024 * 1024, gt=0)
    #: CRNN checkpoint written by ``docsum train ocr``.
    weights: Path = BUNDLED_WEIGHTS
    #: Compute precision: auto (fp16 on CUDA, bf16 on CPUs that have it, else fp32), fp32, bf16,
    #: fp16.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    #: Most pixels in one page; larger images are refused (413) before they are decoded.
    max_pixels: int = Field(60_000_000, gt=0)
    #: Longest side of a page in pixels (a 1 × 100,000 px strip is not a document).
    max_side: int = Field(20_000, gt=0)
    #: Pages of a multi-page TIFF read in one request.
    max_pages: int = Field(50, ge=1)
    #: Most pixels of all pages of one request together (50 Letter pages at 300 dpi are 421
    #: million); more is refused (413) from the headers, before any page is decoded.
    max_total_pixels: int = Field(450_000_000, gt=0)
    #: Most text lines found on one page; a page with more is refused (422): thousands of
    #: "lines" are a drawing or noise, and each costs a recognizer pass.
    max_lines_per_page: int = Field(2000, ge=1)
    #: Line crops of one page queued at once (and a second turn waiting behind them); a page
    #: with more queues them in turns, so a page of thousands of lines does not fill the queue
    #: and crowd out other requests.
    lines_per_turn: int = Field(64, ge=1)
    #: Seconds without a request after which freed memory is given back to the kernel
    #: (malloc_trim, see common/heap.py); 0 never does.
    trim_idle_s: float = Field(2.0, ge=0)
    #: Pages analysed (binarize, deskew, find lines) at once; each takes one thread.
    layout_workers: int = Field(2, ge=1, le=64)
    #: Pages of one request read at once: bounds one large TIFF's share of the line queue, so
    #: it cannot crowd out other requests (or overflow the queue by itself).
    page_concurrency: int = Field(2, ge=1, le=64)
    #: Fold typographic marks (’ “ — …) to their ASCII look-alikes in the output.
    ascii: bool = False
    #: Read crops taller than wide also turned 90° both ways and keep the surest reading.
    try_rotations: bool = True
    batch: LineBatchSettings = Field(default_factory=LineBatchSettings)
    #: Off here: the recognizer's large activations are over malloc's mmap ceiling, so it gains
    #: nothing, and decoded page images (tens of MB each) would stay resident.
    keep_freed_memory: bool = False
