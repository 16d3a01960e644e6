"""The README's curl examples work as written (against a real server on a test port)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT, LiveService

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
    blocks = [b for b in _curl_blocks({"8082": summarizer_service.port}) if "/v1/summarize" in b]
    assert blocks, "the README lost its summarizer example"
    for block in blocks:
        out = subprocess.run(["bash", "-c", block], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        body = json.loads(out.stdout)
        assert body["summary"] and body["sentences"] and body["model"]["name"]
