"""Per-key rate limit (429 + Retry-After), body size limit (413), CORS, key reload."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveService, start_gateway
from tests.gateway.conftest import AUTH, backend, counter

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def strict_gateway(
    tmp_path_factory: pytest.TempPathFactory, summarizer_service: LiveService
) -> Iterator[LiveService]:
    """1 request per 2 s with a burst of 3 per key, 64 kB bodies, CORS for one origin."""
    gw = start_gateway(
        tmp_path_factory.mktemp("gw-strict"),
        {"ocr": [backend(summarizer_service.url)], "summarizer": [backend(summarizer_service.url)]},
        {
            "DOCSUM_GATEWAY_RATE_LIMIT_RPS": "0.5",
            "DOCSUM_GATEWAY_RATE_LIMIT_BURST": "3",
            "DOCSUM_GATEWAY_MAX_BODY_BYTES": "65536",
            "DOCSUM_GATEWAY_CORS_ORIGINS": '["https://app.example.com"]',
            "DOCSUM_GATEWAY_RELOAD_INTERVAL_S": "0.2",
        },
    )
    yield gw
    gw.stop()


def test_rate_limit_is_429_with_retry_after(strict_gateway: LiveService) -> None:
    url = f"{strict_gateway.url}/api/v1/summarize"
    answers = [httpx.post(url, json={"text": "x"}, headers=AUTH) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]  # burst, then one per 2 s
    # Every answer says the quota (RateLimit-* headers), the 429 too.
    assert {r.headers["ratelimit-limit"] for r in answers} == {"3"}
    remaining = [int(r.headers["ratelimit-remaining"]) for r in answers]
    assert remaining[0] >= remaining[2] and remaining[3] == 0
    r = httpx.post(url, json={"text": "x"}, headers=AUTH)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    wait_s = int(r.headers["retry-after"])
    assert 1 <= wait_s <= 2
    assert r.headers["ratelimit-remaining"] == "0"
    assert wait_s <= int(r.headers["ratelimit-reset"]) <= 6  # full again: 3 tokens at 0.5/s
    time.sleep(wait_s + 0.1)  # a token is back when Retry-After says
    assert httpx.post(url, json={"text": "x"}, headers=AUTH).status_code == 200
    assert counter(strict_gateway, "docsum_gateway_rate_limited_total") == 2


def test_body_over_the_limit_is_413(strict_gateway: LiveService) -> None:
    time.sleep(2.1)  # a token again (the Content-Length refusal below takes none)
    url = f"{strict_gateway.url}/api/v1/documents:summarize"
    big = b"%PDF-1.4\n" + b"0" * 70_000
    r = httpx.post(url, files={"file": ("big.pdf", big, "application/pdf")}, headers=AUTH)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused once past the limit
        for _ in range(20):
            yield b"x" * 8192

    r = httpx.post(
        f"{strict_gateway.url}/api/v1/summarize",
        content=chunks(),
        headers={**AUTH, "content-type": "application/json"},
    )
    assert r.status_code == 413


def test_cors_preflight_and_headers(strict_gateway: LiveService) -> None:
    url = f"{strict_gateway.url}/api/v1/summarize"
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key,content-type",
    }
    r = httpx.options(url, headers=preflight)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-api-key" in r.headers["access-control-allow-headers"].lower()
    r = httpx.options(url, headers={**preflight, "Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in r.headers
    # A 401 still carries CORS headers, so the page can read why.
    r = httpx.post(url, json={"text": "x"}, headers={"Origin": "https://app.example.com"})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"


def test_keys_file_is_reloaded(strict_gateway: LiveService, tmp_path: Path) -> None:
    keys = strict_gateway.log_path.parent / "api-keys"
    new_key = "rotated-key-123"
    keys.write_text(keys.read_text() + f"new:{hashlib.sha256(new_key.encode()).hexdigest()}\n")
    url = f"{strict_gateway.url}/api/v1/summarize"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = httpx.post(url, json={"text": "x"}, headers={"X-API-Key": new_key})
        if r.status_code == 200:
            break
        time.sleep(0.2)
    assert r.status_code == 200
    assert "rotated-key-123" not in strict_gateway.logs()
