"""docsum's version: the installed distribution's, so pyproject.toml is its one source."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def _installed_version() -> str:
    try:
        return version("docsum")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


VERSION = _installed_version()
