"""The HTTPRoute carries the gateway's /docs page (and all it loads) and /openapi.json when
``ingress.exposeDocs`` is on, and only /api/ when it is off; the probes and metrics never."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from docsum.gateway.docs_ui import ASSETS_PATH, DOCS_PATH, INIT_PATH
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import k8s_render as kr

if not (kr.TOOLS_BIN / "helm").exists():
    pytest.skip("helm not installed: run `make tools`", allow_module_level=True)

#: The gateway's docs paths: what the browser fetches for /docs, and the schema.
DOCS = [
    DOCS_PATH,
    INIT_PATH,
    f"{ASSETS_PATH}/swagger-ui-bundle.js",
    f"{ASSETS_PATH}/swagger-ui.css",
    f"{ASSETS_PATH}/favicon.png",
    f"{DOCS_PATH}/oauth2-redirect",
    "/openapi.json",
]
API = ["/api/v1/summarize", "/api/v1/documents:summarize"]
NEVER = ["/livez", "/readyz", "/metrics", "/docsx", "/openapi.json.bak", "/redoc"]


def matches(match: dict[str, Any], path: str) -> bool:
    """Gateway API path matching: Exact, or PathPrefix element by element (/docs is not
    a prefix of /docsx)."""
    kind, value = match["path"]["type"], match["path"]["value"]
    if kind == "Exact":
        return bool(path == value)
    assert kind == "PathPrefix", kind
    prefix = [e for e in value.split("/") if e]
    return [e for e in path.split("/") if e][: len(prefix)] == prefix


def route(**ingress: Any) -> dict[str, Any]:
    values = kr.values_for(["ingress"], {"ingress": ingress} if ingress else {})
    [obj] = [o for o in kr.helm_template(values) if o["kind"] == "HTTPRoute"]
    return obj


def routed(obj: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """The rules that send ``path`` to a backend."""
    return [r for r in obj["spec"]["rules"] if any(matches(m, path) for m in r["matches"])]


@pytest.mark.parametrize("expose", [None, True, False])
def test_docs_are_routed_only_when_exposed(expose: bool | None) -> None:
    obj = route(**({} if expose is None else {"exposeDocs": expose}))
    api_rules = {id(r) for p in API for r in routed(obj, p)}
    assert api_rules, "the /api/ rule is gone"
    for path in DOCS:
        assert bool(routed(obj, path)) is (expose is not False), path
    for path in NEVER:
        assert not routed(obj, path), path
    # The API's rule keeps the deadline-derived timeouts, whatever carries the docs.
    for rule in obj["spec"]["rules"]:
        if id(rule) in api_rules:
            assert rule["timeouts"]["request"] == rule["timeouts"]["backendRequest"] == "65s"


def test_schema_refuses_a_value_that_is_not_a_boolean() -> None:
    with pytest.raises(RuntimeError, match="exposeDocs"):
        route(exposeDocs="yes")
