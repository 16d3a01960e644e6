"""Framework boundaries are import boundaries: model code loads without the web server, and
the contracts the gateway shares with the summarizer load without torch or numpy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Every module of these packages but their HTTP shells (``app``).
_ML_PACKAGES = ("docsum.ocr", "docsum.summarizer")
_HTTP_SHELLS = ("docsum.ocr.app", "docsum.summarizer.app")


_REPORT = """
import json, sys
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def _loaded_after(script: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after ``script`` ran in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", script + _REPORT],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.slow  # a fresh interpreter imports torch
def test_model_code_imports_without_fastapi_or_starlette() -> None:
    script = f"""
import importlib, pkgutil
names = ["docsum.common.errors"]
for package in {_ML_PACKAGES!r}:
    path = importlib.import_module(package).__path__
    names += [m.name for m in pkgutil.walk_packages(path, package + ".")]
names = [n for n in names if n not in {_HTTP_SHELLS!r}]
assert "docsum.ocr.recognize" in names and "docsum.summarizer.summarize" in names, names
for name in names:
    importlib.import_module(name)
"""
    loaded = _loaded_after(script)
    assert "torch" in loaded  # the model code did load
    assert not loaded & {"fastapi", "starlette", "uvicorn"}


@pytest.mark.slow  # a fresh interpreter imports torch
def test_the_http_shell_does_load_fastapi() -> None:
    # The check above can fail: importing an app brings the framework in.
    assert {"fastapi", "starlette"} <= _loaded_after("import docsum.summarizer.app")


def test_the_shared_contracts_import_only_pydantic() -> None:
    loaded = _loaded_after("import docsum.common.contracts")
    assert "pydantic" in loaded
    assert not loaded & {"torch", "numpy", "fastapi", "starlette"}
