"""`docsum up`'s gateway files: a development key made once, its hash, local backends."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from docsum.gateway.auth import KeyRing, load_keys
from docsum.gateway.backends import load_backends
from docsum.local import gateway_env


def test_development_key_and_backends_are_made_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCSUM_OCR_PORT", "18181")
    env = gateway_env({}, runs=tmp_path)
    key = (tmp_path / "dev-api-key").read_text().strip()
    assert len(key) >= 32
    assert f"export DOCSUM_API_KEY={key}" in capsys.readouterr().err  # shown at start
    keys = load_keys(Path(env["DOCSUM_GATEWAY_API_KEYS_FILE"]))
    assert KeyRing.from_mapping(keys).identify(key) == "dev"
    assert key not in Path(env["DOCSUM_GATEWAY_API_KEYS_FILE"]).read_text()  # hash only
    assert keys["dev"] == hashlib.sha256(key.encode()).digest()
    backends = load_backends(Path(env["DOCSUM_GATEWAY_BACKENDS_FILE"]))
    assert backends["ocr"][0].url == "http://127.0.0.1:18181"
    assert backends["summarizer"][0].url == "http://127.0.0.1:8082"
    # The next start keeps the same key; a configured keys file is left alone.
    again = gateway_env({}, runs=tmp_path)
    assert (tmp_path / "dev-api-key").read_text().strip() == key
    assert again["DOCSUM_GATEWAY_API_KEYS_FILE"] == env["DOCSUM_GATEWAY_API_KEYS_FILE"]
    mine = {"DOCSUM_GATEWAY_API_KEYS_FILE": "/etc/keys", "DOCSUM_GATEWAY_BACKENDS_FILE": "/b"}
    assert gateway_env(mine, runs=tmp_path) == mine
    assert json.loads(Path(env["DOCSUM_GATEWAY_BACKENDS_FILE"]).read_text())
