"""/docs in process: the page and everything it loads come from the gateway (no CDN), under a
CSP that allows nothing else; the browser's view is tests/e2e/test_docs_ui.py."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from docsum.gateway.app import build_app
from docsum.gateway.auth import hash_key
from docsum.gateway.settings import GatewaySettings
from tests.gateway.inprocess import BACKENDS


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    keys = tmp_path / "keys"
    keys.write_text(f"tests:{hash_key('k')}\n")
    backends = tmp_path / "backends.json"
    backends.write_text(json.dumps(BACKENDS))
    settings = GatewaySettings(api_keys_file=keys, backends_file=backends, reload_interval_s=0)
    app = build_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        yield c
    await app.state.gateway.aclose()


async def test_the_page_loads_only_what_the_gateway_serves(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp
    # No inline script (script-src 'self' would block it) and no absolute URL to fetch.
    assert "<script>" not in r.text and "//" not in r.text.replace("<!DOCTYPE", "")
    loaded = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert len(loaded) == 4, loaded
    for path in loaded:
        asset = await client.get(path)
        assert asset.status_code == 200, path
        if path.endswith(".js"):
            assert asset.headers["content-type"].startswith("text/javascript"), path
    bundle = await client.get("/docs/assets/swagger-ui-bundle.js")
    # Swagger UI 5 (the first to read OpenAPI 3.1, which FastAPI writes).
    assert re.search(r'PACKAGE_VERSION:"5\.\d+\.\d+"', bundle.text)


async def test_the_page_points_at_the_schema_and_keeps_the_key(client: httpx.AsyncClient) -> None:
    page = (await client.get("/docs")).text
    [raw] = re.findall(r'data-options="([^"]*)"', page)
    options = json.loads(html.unescape(raw))
    assert options["url"] == "/openapi.json" and options["persistAuthorization"] is True
    spec = (await client.get(options["url"])).json()
    assert spec["openapi"].startswith("3.1")
    assert set(spec["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}


@pytest.mark.parametrize("path", ["/redoc", "/docs/", "/docs/assets/missing.js"])
async def test_no_cdn_page_nor_stray_path_is_served(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 404
