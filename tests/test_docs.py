"""Generated docs match their sources: docs/settings.md the Settings classes, bench/RESULTS.md
the results files. A drifted file fails here with the diff and the command that fixes it."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # imports every service's settings in a fresh interpreter (~10 s)
@pytest.mark.parametrize("script", ["scripts.render_settings_docs", "bench.render_results"])
def test_generated_doc_is_up_to_date(script: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", script, "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _documented() -> set[str]:
    return set(
        re.findall(r"^\| `(DOCSUM_[A-Z0-9_]+)` \|", (ROOT / "docs/settings.md").read_text(), re.M)
    )


@pytest.mark.parametrize(
    ("module", "cls", "env", "attribute", "value"),
    [
        (
            "docsum.gateway.settings",
            "GatewaySettings",
            "DOCSUM_GATEWAY_RATE_LIMIT_RPS",
            "rate_limit_rps",
            7.0,
        ),
        (
            "docsum.gateway.settings",
            "GatewaySettings",
            "DOCSUM_GATEWAY_SUMMARIZER__RETRIES",
            "summarizer.retries",
            4,
        ),
        (
            "docsum.ocr.settings",
            "OCRSettings",
            "DOCSUM_OCR_BATCH__MAX_QUEUE_SIZE",
            "batch.max_queue_size",
            77,
        ),
        (
            "docsum.summarizer.settings",
            "SummarizerSettings",
            "DOCSUM_SUMMARIZER_RANK_LONG__THRESHOLD",
            "rank_long.threshold",
            0.45,
        ),
        (
            "docsum.rollout.settings",
            "RolloutSettings",
            "DOCSUM_ROLLOUT_MAX_P99_RATIO",
            "max_p99_ratio",
            1.7,
        ),
    ],
)
def test_documented_names_are_the_ones_read(
    module: str, cls: str, env: str, attribute: str, value: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The names in docs/settings.md are what pydantic-settings reads (prefix, nesting)."""
    assert env in _documented()
    monkeypatch.setenv(env, str(value))
    settings = getattr(importlib.import_module(module), cls)()
    for part in attribute.split("."):
        settings = getattr(settings, part)
    assert settings == value


def test_decision_references_name_a_record() -> None:
    """Code that cites ``docs/decisions.md, "<title>"`` names a record that exists there."""
    titles = set(re.findall(r"^#{2,3} (.+)$", (ROOT / "docs/decisions.md").read_text(), re.M))
    cited: dict[str, str] = {}
    for folder in ("services", "bench", "loadtests", "scripts", "monitoring"):
        for path in (ROOT / folder).rglob("*.py"):
            # Comments and docstrings wrap: join the lines, dropping their comment markers.
            text = re.sub(r"\s*\n\s*(?:#:?\s*)?", " ", path.read_text())
            for title in re.findall(r'decisions\.md, "([^"]+)"', text):
                cited[title] = str(path.relative_to(ROOT))
    assert cited, "no code cites docs/decisions.md"
    missing = {t: p for t, p in cited.items() if t not in titles}
    assert not missing, f"no such record in docs/decisions.md: {missing}"
