"""Notice when a file changes: polling its stat every interval (a Kubernetes ConfigMap or
Secret update swaps a symlink, so inode and mtime change; inotify would miss that)."""

from __future__ import annotations

import os
from pathlib import Path

Stamp = tuple[int, int, int] | None


def stamp(path: Path) -> Stamp:
    """(inode, mtime ns, size) of ``path`` following symlinks; None if it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class ChangeDetector:
    """Which of the watched files changed since the last :meth:`changed` call."""

    def __init__(self, paths: list[Path]) -> None:
        self._stamps = {p: stamp(p) for p in paths}

    def changed(self) -> list[Path]:
        out = []
        for path, old in self._stamps.items():
            new = stamp(path)
            if new != old:
                self._stamps[path] = new
                if new is not None:  # a file mid-replace is read again on the next change
                    out.append(path)
        return out
