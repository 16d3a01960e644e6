"""Freed memory kept for reuse: a repeated round of allocations no longer faults its pages in."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")

# A forward pass in small: four 8 MB activations allocated, written and freed, ten times over.
# glibc's defaults give the freed top of the heap back to the kernel (it is past the trim
# threshold), so each round faults its pages in again. Run in a fresh process only: malloc's
# settings cannot be undone, and the pytest process must keep glibc's defaults. Prints the page
# faults of the ten rounds.
_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from docsum.common.heap import retain_freed_memory

    if sys.argv[1] == "retain":
        assert retain_freed_memory(), "glibc did not take the settings"

    def one_round():
        blocks = [np.ones(8 << 20, np.uint8) for _ in range(4)]
        del blocks

    one_round(); one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        one_round()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def test_a_repeated_round_of_allocations_reuses_its_memory() -> None:
    kept, given_back = _faults("retain"), _faults("default")
    # 10 rounds × 32 MB is 80,000 pages; glibc's defaults fault in tens of thousands of them.
    assert given_back > 5_000, given_back
    assert kept < given_back / 20, (kept, given_back)
