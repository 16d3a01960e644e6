"""``docsum --url`` against the real stack (gateway, OCR, summarizer on 127.0.0.1), run where
torch and the other model libraries cannot be imported, as in a ``docsum[client]`` install."""

from __future__ import annotations

import json
import os

import pytest

from docsum.client import Exit
from tests.cli.no_torch import docsum_without_torch
from tests.conftest import GATEWAY_KEY, ROOT, LiveService

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NEWS = (ROOT / "examples" / "news.txt").read_text()


def _client(gateway: LiveService, *args: str, key: str = GATEWAY_KEY) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCSUM_")}
    out = docsum_without_torch("--url", gateway.url, "--api-key", key, *args, env=env)
    return out.returncode, out.stdout, out.stderr


def test_summarize_a_text_file(gateway_service: LiveService) -> None:
    code, out, err = _client(
        gateway_service, "summarize", "examples/news.txt", "--max-sentences", "2"
    )
    assert code == Exit.OK, err
    lines = out.splitlines()
    assert len(lines) == 2 and all(line in NEWS for line in lines)


def test_summarize_jsonl_keeps_input_order(gateway_service: LiveService) -> None:
    code, out, err = _client(
        gateway_service, "summarize", "--jsonl", "examples/news.jsonl", "-j", "3"
    )
    assert code == Exit.OK, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == ["budget", "bridge", "harvest"]
    assert rows[1]["summary"].startswith("Engineers finished the new bridge")
    assert len(rows[0]["summary"].split("\n")) == 3  # the default length


def test_ocr_pages_and_lines(gateway_service: LiveService) -> None:
    code, out, err = _client(
        gateway_service, "ocr", "examples/page.png", "examples/line.png", "--format", "jsonl"
    )
    assert code == Exit.OK, err
    page, line = (json.loads(x) for x in out.splitlines())
    assert page["file"] == "examples/page.png"
    assert "The city council approved a new budget" in page["text"]
    assert "Research Council" in line["text"]
    code, out, _ = _client(gateway_service, "ocr", "--mode", "line", "examples/line.png")
    assert code == Exit.OK and out.count("\n") == 1 and "National Research Council" in out


def test_documents_scanned_and_born_digital(gateway_service: LiveService) -> None:
    code, out, err = _client(
        gateway_service, "document", "examples/scan-2pages.pdf", "examples/text.pdf",
        "--max-sentences", "2", "--format", "jsonl", "-j", "2",
    )  # fmt: skip
    assert code == Exit.OK, err
    scan, text = (json.loads(x) for x in out.splitlines())
    assert "Engineers finished the new bridge" in scan["text"] and "ring road" in scan["text"]
    assert scan["summary"] and text["summary"].startswith("Farmers in the valley")


def test_a_file_the_gateway_refuses_fails_alone(gateway_service: LiveService) -> None:
    code, out, err = _client(
        gateway_service, "ocr", "examples/news.txt", "examples/line.png", "--format", "jsonl"
    )
    assert code == Exit.FAILED
    bad, good = (json.loads(x) for x in out.splitlines())
    assert bad["text"] == "" and bad["error"].startswith("HTTP 415 unsupported_media_type")
    assert "Research Council" in good["text"] and "error" not in good
    assert "examples/news.txt: HTTP 415" in err


def test_a_wrong_key_exits_3(gateway_service: LiveService) -> None:
    code, out, err = _client(gateway_service, "summarize", "examples/news.txt", key="not-a-key")
    assert code == Exit.AUTH and out == ""
    assert "refused the API key" in err and "401" in err
