"""Write generated files, or with ``--check`` say whether the committed ones have drifted."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(
    out: Path, render: Callable[[], str], source: str, command: str, argv: list[str] | None
) -> int:
    """The ``main`` of a generator of ``out``; ``source`` names what it is rendered from."""
    return main_many(out.relative_to(ROOT), lambda: {out: render()}, source, command, argv)


def main_many(
    what: Path | str,
    render: Callable[[], Mapping[Path, str | bytes]],
    source: str,
    command: str,
    argv: list[str] | None,
) -> int:
    """The ``main`` of a generator of several files (``what`` names them all)."""
    parser = argparse.ArgumentParser(description=f"Render {what} from {source}.")
    parser.add_argument("--check", action="store_true", help=f"exit 1 when {what} drifted")
    args = parser.parse_args(argv)
    files = render()
    if not args.check:
        for out, content in files.items():
            out.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                out.write_bytes(content)
            else:
                out.write_text(content, encoding="utf-8")
            sys.stdout.write(f"wrote {out.relative_to(ROOT)}\n")
        return 0
    stale = [out for out, content in files.items() if _drifted(out, content, source)]
    if not stale:
        sys.stdout.write(f"{what} matches {source}\n")
        return 0
    names = ", ".join(str(out.relative_to(ROOT)) for out in stale)
    sys.stderr.write(f"{names} {'is' if len(stale) == 1 else 'are'} out of date: run `{command}`\n")
    return 1


def _drifted(out: Path, content: str | bytes, source: str) -> bool:
    """Whether ``out`` differs from ``content``; a text file's diff is printed."""
    if isinstance(content, bytes):
        return not out.is_file() or out.read_bytes() != content
    current = out.read_text(encoding="utf-8") if out.is_file() else ""
    if current == content:
        return False
    name = out.relative_to(ROOT)
    sys.stdout.writelines(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            content.splitlines(keepends=True),
            f"{name} (committed)",
            f"{name} (from {source})",
        )
    )
    return True
