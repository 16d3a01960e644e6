"""Commands run to their end from the repository root, their output kept as text: the test
judges the exit status and the output itself."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from .services import ROOT


def run(
    command: Sequence[str],
    timeout_s: float,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``cwd`` with the environment ``env`` (this process's if None);
    TimeoutExpired after ``timeout_s`` seconds. The exit status is not checked."""
    return subprocess.run(
        list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s
    )
