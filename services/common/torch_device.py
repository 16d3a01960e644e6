"""Where a torch model runs and in which precision: decided once, at load.

Only model services import this (the gateway has no torch).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch

from .heap import retain_freed_memory

log = logging.getLogger(__name__)


def resolve_device(setting: str) -> torch.device:
    """``auto`` → CUDA when a GPU is visible, else CPU; anything else is taken as given."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {setting!r} asked for, but no CUDA device is visible")
    return device


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); emulated bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` (auto, fp32, bf16, fp16); None means fp32.

    auto: fp16 on CUDA, bf16 on a CPU that has it natively, fp32 otherwise.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if cpu_has_bf16() else None


def cpu_quota(cgroup: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs' worth of time this process's cgroup may use (a container's CPU limit), or None
    when unlimited or unknown. Reads cgroup v2 ``cpu.max``, else v1 ``cpu.cfs_quota_us``."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    if not (quota.isdigit() and period.isdigit() and int(period) > 0):  # "max", "-1": none
        return None
    return int(quota) / int(period)


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process can keep busy: those it may run on, capped by its CPU limit
    (rounded up). torch's default (every core of the node) oversubscribes a limited pod."""
    cpus = len(os.sched_getaffinity(0))
    quota = cpu_quota(cgroup)
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def configure_runtime(threads: int, keep_freed_memory: bool) -> None:
    """Set up the process for a model: torch's intra-op threads (0: :func:`usable_cpus`),
    numpy's BLAS held to one thread, and, if asked, freed memory kept for
    reuse (:mod:`.heap`).

    The model services' numpy work is small (a document's sentence similarities, page
    geometry), but OpenBLAS wakes a thread per core for it, and those threads keep spinning
    after the call: the next forward pass then shares its cores with them (docs/decisions.md,
    "numpy's BLAS held to one thread").
    """
    torch.set_num_threads(threads if threads > 0 else usable_cpus())
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    if keep_freed_memory:
        retain_freed_memory()
