"""The kit's app: error shape, request ids, body limit, probes and metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from docsum.common.errors import InvalidInput, Overloaded
from docsum.common.health import Health
from docsum.common.logs import JsonFormatter, request_id_var
from docsum.common.service import create_app
from docsum.common.settings import ServiceSettings


class Echo(BaseModel):
    n: int


def _app(health: Health) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    app = create_app(
        title="t",
        version="0",
        settings=ServiceSettings(max_body_bytes=100),
        health=health,
        lifespan=lifespan,
    )

    @app.post("/echo")
    async def echo(body: Echo) -> dict[str, int]:
        if body.n < 0:
            raise InvalidInput("n must not be negative", field="n")
        if body.n == 503:
            raise Overloaded("busy", retry_after_s=7)
        return {"n": body.n}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("bug")

    return app


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
async def client(health: Health) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(health), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_typed_errors_have_status_code_and_request_id(client: httpx.AsyncClient) -> None:
    r = await client.post("/echo", json={"n": -1}, headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 422
    assert r.headers["x-request-id"] == "abc-123"
    assert r.json() == {
        "error": {
            "code": "invalid_input",
            "message": "n must not be negative",
            "request_id": "abc-123",
            "field": "n",
        }
    }
    r = await client.post("/echo", json={"n": 503})
    assert r.status_code == 503 and r.headers["retry-after"] == "7"


async def test_validation_and_routing_errors_share_the_shape(client: httpx.AsyncClient) -> None:
    r = await client.post("/echo", json={"n": "x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    assert "n" in r.json()["error"]["message"]
    r = await client.post(
        "/echo", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    r = await client.get("/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await client.get("/echo")
    assert r.status_code == 405


async def test_unexpected_errors_are_500_without_internals(client: httpx.AsyncClient) -> None:
    r = await client.get("/boom")
    assert r.status_code == 500
    assert "bug" not in r.text and r.json()["error"]["request_id"]


async def test_request_id_is_made_when_missing_or_unsafe(client: httpx.AsyncClient) -> None:
    r = await client.post("/echo", json={"n": 1}, headers={"X-Request-ID": "bad id\n"})
    rid = r.headers["x-request-id"]
    assert len(rid) == 32 and rid != "bad id"


async def test_body_over_limit_is_413(client: httpx.AsyncClient) -> None:
    r = await client.post("/echo", content=b"x" * 101, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(5):
            yield b'{"n": 1' + b" " * 30

    r = await client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


async def test_readyz_follows_the_model_and_draining(
    client: httpx.AsyncClient, health: Health
) -> None:
    assert (await client.get("/livez")).status_code == 200
    assert (await client.get("/readyz")).status_code == 503
    health.ready = True
    assert (await client.get("/readyz")).status_code == 200
    health.draining = True
    r = await client.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "draining"
    health.failed = "weights missing"
    assert (await client.get("/livez")).status_code == 500


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.post("/echo", json={"n": 2})
    text = (await client.get("/metrics")).text
    assert 'docsum_http_requests_total{method="POST",route="/echo",status="200"}' in text
    assert "docsum_http_request_duration_seconds_bucket" in text


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.makeLogRecord({"msg": "hello %s", "args": ("you",), "levelname": "INFO"})
    record.__dict__["status"] = 200
    token = request_id_var.set("rid-1")
    try:
        line = json.loads(JsonFormatter("svc").format(record))
    finally:
        request_id_var.reset(token)
    assert line["msg"] == "hello you" and line["request_id"] == "rid-1"
    assert line["service"] == "svc" and line["status"] == 200
