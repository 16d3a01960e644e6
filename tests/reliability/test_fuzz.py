"""The short fuzz run of ``make test``: generated cases against each live API's OpenAPI.

``make fuzz`` (bench/fuzz.py) runs the same harness with at least 1,000 cases per API.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from tests.reliability.fuzzing import FuzzReport, fuzz_api
from tests.support.pace import patient
from tests.support.services import GATEWAY_KEY, LiveService, free_port

#: Cases per API in the short run (each API's operations and both modes share them).
CASES = 80
#: A fixed seed: the short run sends the same cases every time, so a failure reproduces.
SEED = 20261121


def _explain(report: FuzzReport) -> str:
    lines = [f"{report.api}: {report.failed_cases} of {report.cases} cases failed"]
    for f in report.failures[:10]:
        lines.append(f"- {f.operation} [{f.mode}] {f.rule} ({f.status}): {f.detail[:300]}")
        lines.append(f"  replay: {f.curl[:400]}")
    return "\n".join(lines)


def _hang_s() -> float:
    """An answer slower than this is a hang (30 s on a quiet machine)."""
    return patient(30.0)


def _assert_clean(report: FuzzReport, hang_s: float) -> None:
    assert report.cases >= CASES
    assert not report.failed_cases, _explain(report)
    assert report.slowest_s < hang_s


@pytest.mark.integration
@pytest.mark.slow
def test_summarizer_api_survives_generated_input(summarizer_service: LiveService) -> None:
    hang_s = _hang_s()
    report = fuzz_api(summarizer_service.url, CASES, seed_value=SEED, timeout_s=hang_s)
    _assert_clean(report, hang_s)
    # Both schema-valid texts (answered 200) and refusals were exercised.
    statuses = report.statuses["POST /v1/summarize"]
    assert statuses[200] > 0 and statuses[422] > 0


@pytest.mark.integration
@pytest.mark.slow
def test_ocr_api_survives_generated_uploads(ocr_service: LiveService) -> None:
    hang_s = _hang_s()
    report = fuzz_api(ocr_service.url, CASES, seed_value=SEED, timeout_s=hang_s)
    _assert_clean(report, hang_s)
    statuses = report.statuses["POST /v1/ocr"]
    assert statuses[200] > 0, statuses  # real images were read, not only refused


@pytest.mark.integration
@pytest.mark.slow
def test_gateway_api_survives_generated_input(gateway_service: LiveService) -> None:
    hang_s = _hang_s()
    report = fuzz_api(
        gateway_service.url,
        CASES,
        seed_value=SEED,
        headers={"X-API-Key": GATEWAY_KEY},
        timeout_s=hang_s,
    )
    _assert_clean(report, hang_s)
    assert set(report.statuses) >= {
        "POST /api/v1/summarize",
        "POST /api/v1/ocr",
        "POST /api/v1/documents:summarize",
    }


# ---------------------------------------------------------------- the harness itself


class _Echo(BaseModel):
    n: int


def _buggy_app() -> FastAPI:
    """An API with the faults the harness must catch: a 500, a body that breaks its schema,
    and an error not in docsum's shape."""
    app = FastAPI()

    @app.post("/v1/echo", response_model=_Echo)
    async def echo(body: _Echo) -> object:
        if body.n % 3 == 0:
            raise RuntimeError("boom")  # → 500
        if body.n % 3 == 1:
            from fastapi.responses import JSONResponse

            return JSONResponse({"n": "not a number"})  # breaks the response schema
        return {"n": body.n}

    return app


@pytest.fixture
def buggy_api() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(_buggy_app(), host="127.0.0.1", port=port, log_level="critical")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.integration
@pytest.mark.slow
def test_the_harness_reports_server_errors_schema_breaks_and_error_shapes(buggy_api: str) -> None:
    report = fuzz_api(buggy_api, 60, seed_value=SEED, timeout_s=5)
    rules = {f.rule for f in report.failures}
    assert "server error (5xx)" in rules
    assert "200 body does not match the response schema" in rules
    # FastAPI's own 422 ({"detail": ...}) is not docsum's error body.
    assert "error body not in docsum's shape" in rules
    assert report.to_dict()["server_errors"] > 0
    assert all(f.curl for f in report.failures)
