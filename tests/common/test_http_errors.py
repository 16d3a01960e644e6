"""The error table: each class's status and code, and the router's bare statuses answered in
the same shape with the code of the class of that status."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from docsum.common import errors
from docsum.common.errors import CLIENT_ERROR_CODES, DocsumError
from docsum.common.http_errors import install_error_handlers


def test_each_client_error_status_has_one_class() -> None:
    classes: list[type[DocsumError]] = []
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, DocsumError):
            classes.append(value)
    statuses = Counter(c.status for c in classes if 400 <= c.status < 500)
    assert max(statuses.values()) == 1, statuses
    assert {c.status: c.code for c in classes if 400 <= c.status < 500} == CLIENT_ERROR_CODES
    assert CLIENT_ERROR_CODES[408] == "request_timeout"
    assert len({c.code for c in classes}) == len(classes)  # codes are unique too


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/only-post")
    async def only_post() -> dict[str, str]:
        return {}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_router_statuses_get_the_code_of_their_class(client: httpx.AsyncClient) -> None:
    r = await client.get("/nowhere")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await client.get("/only-post")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert r.headers["allow"] == "POST"
