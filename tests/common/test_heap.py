"""Freed memory kept for reuse: a forward pass that repeats no longer faults its pages in."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from docsum.common.heap import retain_freed_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")

# Encode the same sentences three times with the bundled encoder; report the page faults of
# the last pass. Run in a fresh process: malloc's settings cannot be undone.
_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from docsum.common.heap import retain_freed_memory
    from docsum.summarizer.encoder import SentenceEncoder
    from docsum.summarizer.settings import bundled_model_path

    if sys.argv[1] == "retain":
        assert retain_freed_memory()
    encoder = SentenceEncoder(bundled_model_path(), device="cpu", precision="fp32", threads=1)
    words = "the council approved a budget for schools roads and parks after a long debate".split()
    sentences = [" ".join(words[i % 7 :] + words[: i % 5]) * (1 + i % 3) for i in range(240)]
    for _ in range(2):
        encoder.encode(sentences)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    encoder.encode(sentences)
    print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
    """
)


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(json.loads(out.stdout.strip().splitlines()[-1]))


def test_glibc_takes_the_settings() -> None:
    assert retain_freed_memory() is True


def test_a_repeated_forward_pass_reuses_its_memory() -> None:
    kept, given_back = _faults("retain"), _faults("default")
    assert kept * 10 < given_back, (kept, given_back)
