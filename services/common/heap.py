"""Keep freed memory in the process heap, so a model server's tensors reuse warm pages.

A forward pass allocates and frees the same few-megabyte activation tensors hundreds of times.
glibc's malloc hands such blocks back to the kernel when they are freed (they were mmap'ed,
or they sit at the top of the heap above ``M_TRIM_THRESHOLD``), so the next pass faults every
page in again and the kernel zeroes it. Raising both thresholds keeps those blocks in the heap
for reuse, as jemalloc or tcmalloc would, at the price of resident memory staying at its peak
(the working set a pod's memory limit has to cover anyway). Blocks over 32 MB (glibc's ceiling
for the setting) are still mapped and unmapped each time. Which service turns it on
(``keep_freed_memory``), and the measurements: docs/decisions.md, "Freed memory kept in the
heap". Linux with glibc only; elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

# mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (glibc's ceiling for the setting on 64-bit).
MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap is given back to the kernel only beyond this.
TRIM_THRESHOLD = 1 << 30


def retain_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed blocks for reuse; False where it cannot be told."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # musl has a mallopt that does nothing and returns 0; glibc returns 1 on success.
    done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    done = done and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if done:
        log.info(
            "malloc keeps freed memory for reuse",
            extra={"mmap_threshold_bytes": MMAP_THRESHOLD, "trim_threshold_bytes": TRIM_THRESHOLD},
        )
    return done
