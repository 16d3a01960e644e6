"""The README's curl examples work as written (against a real server on a test port)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import GATEWAY_KEY, ROOT, LiveService

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _curl_blocks(port_of: dict[str, int]) -> list[str]:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(curl .*?)\n```", readme, flags=re.S)
    out = []
    for block in blocks:
        for default, port in port_of.items():
            block = block.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
        out.append(block)
    return out


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_summarizer_curl_example(summarizer_service: LiveService) -> None:
    blocks = [
        b
        for b in _curl_blocks({"8082": summarizer_service.port})
        if "/v1/summarize" in b and "/api/" not in b
    ]
    assert blocks, "the README lost its summarizer example"
    for block in blocks:
        out = subprocess.run(["bash", "-c", block], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        body = json.loads(out.stdout)
        assert body["summary"] and body["sentences"] and body["model"]["name"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_gateway_curl_examples(gateway_service: LiveService) -> None:
    """The gateway's examples, with the key from $DOCSUM_API_KEY as the README says."""
    blocks = [b for b in _curl_blocks({"8080": gateway_service.port}) if "/api/v1/" in b]
    routes = {route for b in blocks for route in re.findall(r"/api/v1/[a-z:]+", b)}
    assert routes == {"/api/v1/summarize", "/api/v1/ocr", "/api/v1/documents:summarize"}
    env = {**os.environ, "DOCSUM_API_KEY": GATEWAY_KEY}
    for block in blocks:
        out = subprocess.run(
            ["bash", "-c", block], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
        )
        assert out.returncode == 0, out.stderr
        body = json.loads(out.stdout)
        assert "error" not in body, body
        if "documents:summarize" in block:
            assert body["summary"] and body["pages"][0]["source"] == "ocr"
        elif "/api/v1/ocr" in block:
            assert body["text"] and body["pages"][0]["lines"]
        else:
            assert body["summary"] and body["sentences"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_ocr_curl_example(ocr_service: LiveService) -> None:
    port = ocr_service.port
    blocks = [b for b in _curl_blocks({"8081": port}) if f"127.0.0.1:{port}/v1/ocr" in b]
    assert blocks, "the README lost its OCR service example"
    for block in blocks:
        out = subprocess.run(["bash", "-c", block], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        body = json.loads(out.stdout)
        assert body["text"] and body["pages"][0]["lines"] and body["model"]["name"] == "crnn"
