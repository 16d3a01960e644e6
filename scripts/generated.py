"""Write a generated file, or with ``--check`` say whether the committed one has drifted."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable
from pathlib import Path


def main(
    out: Path, render: Callable[[], str], source: str, command: str, argv: list[str] | None
) -> int:
    """The ``main`` of a generator of ``out``; ``source`` names what it is rendered from."""
    root = Path(__file__).resolve().parents[1]
    name = out.relative_to(root)
    parser = argparse.ArgumentParser(description=f"Render {name} from {source}.")
    parser.add_argument("--check", action="store_true", help=f"exit 1 when {name} drifted")
    args = parser.parse_args(argv)
    text = render()
    if not args.check:
        out.write_text(text)
        sys.stdout.write(f"wrote {name}\n")
        return 0
    current = out.read_text() if out.is_file() else ""
    if current == text:
        sys.stdout.write(f"{name} matches {source}\n")
        return 0
    sys.stdout.writelines(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            text.splitlines(keepends=True),
            f"{name} (committed)",
            f"{name} (from {source})",
        )
    )
    sys.stderr.write(f"{name} is out of date: run `{command}`\n")
    return 1
