"""Versions: a weighted canary split, header pinning, a blue/green flip under load, SIGHUP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import GatewayLauncher, LiveService, start_gateway
from tests.gateway.conftest import AUTH, backend, counter

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST = {"DOCSUM_GATEWAY_RATE_LIMIT_RPS": "100000", "DOCSUM_GATEWAY_RATE_LIMIT_BURST": "100000"}
TEXT = (
    "The council approved the budget on Tuesday. Schools get more money next year. "
    "Road repairs are cut. Teachers welcomed the plan."
)


def _backends(stable: LiveService, canary: LiveService, w_stable: float, w_canary: float) -> dict:  # type: ignore[type-arg]
    return {
        "ocr": [backend(stable.url)],
        "summarizer": [
            backend(stable.url, "stable", w_stable),
            backend(canary.url, "canary", w_canary),
        ],
    }


def _write(path: Path, backends: dict) -> None:  # type: ignore[type-arg]
    """Replace the file at once, as a ConfigMap update does."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(backends))
    os.replace(tmp, path)


def _served(svc: LiveService, status: str) -> float:
    return counter(svc, "docsum_http_requests_total", route="/v1/summarize", status=status)


@pytest.fixture(scope="module")
def canary_gateway(
    launch_gateway: GatewayLauncher,
    summarizer_service: LiveService,
    canary_summarizer: LiveService,
) -> LiveService:
    return launch_gateway(
        "gw-canary",
        _backends(summarizer_service, canary_summarizer, 90, 10),
        {**FAST, "DOCSUM_GATEWAY_RELOAD_INTERVAL_S": "0.2"},
    )


async def _cheap_requests(gw: LiveService, n: int, headers: dict[str, str]) -> Counter[str]:
    """``n`` requests the summarizer refuses at once (empty text → 422): routing, no model."""
    versions: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(headers={**AUTH, **headers}, limits=limits, timeout=30) as c:

        async def one() -> None:
            r = await c.post(f"{gw.url}/api/v1/summarize", json={"text": ""})
            assert r.status_code == 422, r.text
            versions[r.headers["x-docsum-backend"]] += 1

        for start in range(0, n, 50):
            await asyncio.gather(*(one() for _ in range(min(50, n - start))))
    return versions


def test_canary_split_follows_the_weights(
    canary_gateway: LiveService, summarizer_service: LiveService, canary_summarizer: LiveService
) -> None:
    before = _served(summarizer_service, "422"), _served(canary_summarizer, "422")
    versions = asyncio.run(_cheap_requests(canary_gateway, 1000, {}))
    assert sum(versions.values()) == 1000
    assert abs(versions["canary"] / 1000 - 0.10) <= 0.05, versions
    # The backends themselves saw exactly that split (not just the gateway's header).
    assert _served(summarizer_service, "422") - before[0] == versions["stable"]
    assert _served(canary_summarizer, "422") - before[1] == versions["canary"]
    # Metrics per version, so the canary can be judged against stable.
    labels = {"upstream": "summarizer", "status": "422", "version": "canary"}
    assert counter(canary_gateway, "docsum_upstream_requests_total", **labels) >= versions["canary"]


def test_header_pins_a_version(
    canary_gateway: LiveService, summarizer_service: LiveService, canary_summarizer: LiveService
) -> None:
    before = _served(canary_summarizer, "422")
    assert asyncio.run(_cheap_requests(canary_gateway, 100, {"X-Docsum-Backend": "canary"})) == {
        "canary": 100
    }
    assert _served(canary_summarizer, "422") - before == 100
    pinned = {"X-Docsum-Backend": "summarizer=stable"}
    assert asyncio.run(_cheap_requests(canary_gateway, 50, pinned)) == {"stable": 50}
    r = httpx.post(
        f"{canary_gateway.url}/api/v1/summarize",
        json={"text": TEXT},
        headers={**AUTH, "X-Docsum-Backend": "green"},
    )
    assert r.status_code == 400 and "known: canary, stable" in r.json()["error"]["message"]


def test_blue_green_flip_under_load_fails_no_request(
    canary_gateway: LiveService, summarizer_service: LiveService, canary_summarizer: LiveService
) -> None:
    path = canary_gateway.log_path.parent / "backends.json"
    _write(path, _backends(summarizer_service, canary_summarizer, 100, 0))
    time.sleep(0.6)  # reloaded (polled every 0.2 s)
    log: list[tuple[float, int, str]] = []

    async def load(seconds: float) -> None:
        async with httpx.AsyncClient(headers=AUTH, timeout=60) as client:
            end = time.monotonic() + seconds

            async def worker() -> None:
                while time.monotonic() < end:
                    sent = time.monotonic()  # the version is chosen when a request arrives
                    r = await client.post(
                        f"{canary_gateway.url}/api/v1/summarize", json={"text": TEXT}
                    )
                    version = r.headers.get("x-docsum-backend", "?")
                    log.append((sent, r.status_code, version))

            await asyncio.gather(*(worker() for _ in range(6)))

    async def flip_after(delay: float) -> float:
        await asyncio.sleep(delay)
        _write(path, _backends(summarizer_service, canary_summarizer, 0, 100))
        return time.monotonic()

    async def run() -> float:
        _, flipped = await asyncio.gather(load(4.0), flip_after(1.5))
        return flipped

    flipped_at = asyncio.run(run())
    assert len(log) > 20
    assert Counter(status for _, status, _ in log) == {200: len(log)}  # no failed request
    before = {v for t, _, v in log if t < flipped_at}
    after = {v for t, _, v in log if t > flipped_at + 0.5}  # the 0.2 s poll, with margin
    assert before == {"stable"} and after == {"canary"}
    _write(path, _backends(summarizer_service, canary_summarizer, 90, 10))  # as it was


def test_sighup_reloads_the_backends(
    tmp_path_factory: pytest.TempPathFactory,
    summarizer_service: LiveService,
    canary_summarizer: LiveService,
) -> None:
    gw = start_gateway(
        tmp_path_factory.mktemp("gw-sighup"),
        _backends(summarizer_service, canary_summarizer, 100, 0),
        {**FAST, "DOCSUM_GATEWAY_RELOAD_INTERVAL_S": "0"},  # no polling: SIGHUP only
    )
    try:
        path = gw.log_path.parent / "backends.json"
        _write(path, _backends(summarizer_service, canary_summarizer, 0, 100))
        time.sleep(0.5)
        assert asyncio.run(_cheap_requests(gw, 20, {})) == {"stable": 20}
        gw.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert asyncio.run(_cheap_requests(gw, 20, {})) == {"canary": 20}
        assert gw.proc.poll() is None  # SIGHUP does not stop it
    finally:
        gw.stop()
