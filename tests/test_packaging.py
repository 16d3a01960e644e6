"""The distribution ships every package under services/ (the list in pyproject is explicit)."""

from __future__ import annotations

import tomllib

from tests.support.services import ROOT


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        "docsum" + ".".join(["", *p.parent.relative_to(ROOT / "services").parts])
        for p in (ROOT / "services").rglob("__init__.py")
    }
    assert found == listed, f"missing {sorted(found - listed)}, stale {sorted(listed - found)}"
