"""GPU utilization and memory from NVML, exported at scrape time when a GPU is present.

``docsum_gpu_utilization_ratio`` is what the OCR HorizontalPodAutoscaler scales on (through
prometheus-adapter); on a machine without an NVIDIA driver nothing is registered and the
metrics are simply absent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class NvmlCollector(Collector):
    """Reads every visible GPU through NVML on each scrape."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self._handles = [
            nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())
        ]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        util = GaugeMetricFamily(
            "docsum_gpu_utilization_ratio",
            "Fraction of the last sample period the GPU was busy (NVML), 0-1.",
            labels=["gpu"],
        )
        used = GaugeMetricFamily(
            "docsum_gpu_memory_used_bytes", "GPU memory in use (NVML).", labels=["gpu"]
        )
        total = GaugeMetricFamily(
            "docsum_gpu_memory_total_bytes", "GPU memory in total (NVML).", labels=["gpu"]
        )
        for i, handle in enumerate(self._handles):
            try:
                rates = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception as exc:  # a GPU falling off the bus must not break /metrics
                log.warning("NVML read failed", extra={"gpu": i, "error": repr(exc)})
                continue
            util.add_metric([str(i)], rates.gpu / 100.0)
            used.add_metric([str(i)], float(mem.used))
            total.add_metric([str(i)], float(mem.total))
        yield from (util, used, total)


_registered: NvmlCollector | None = None


def register_gpu_metrics() -> bool:
    """Register the NVML collector once if a GPU is visible; whether it was."""
    global _registered
    if _registered is not None:
        return True
    try:
        import pynvml

        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() == 0:
            return False
        _registered = NvmlCollector(pynvml)
    except Exception as exc:  # no driver, no library, no device: CPU-only pod
        log.info("no GPU metrics (NVML unavailable)", extra={"reason": repr(exc)})
        return False
    REGISTRY.register(_registered)
    return True
