"""``/docs``: Swagger UI served by the gateway itself, for networks without a CDN.

FastAPI's own page loads Swagger UI from jsdelivr, which an air-gapped cluster or a strict
Content-Security-Policy blocks. Here the page, its script and its stylesheet all come from the
gateway (the files of the ``fastapi-offline`` package, Swagger UI 5, which reads OpenAPI 3.1),
and the page carries a CSP that allows nothing else. Everything lives under ``/docs`` so one
path prefix routes it (the chart's HTTPRoute, ``ingress.exposeDocs``); the schema stays at
``/openapi.json``.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
INIT_PATH = f"{DOCS_PATH}/init.js"

#: Swagger UI needs inline styles (set by its React code) and data: images (its icons).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)

# The page's options travel in a data attribute, so that no inline script is needed
# (script-src 'self'). The key entered under "Authorize" is kept in localStorage across reloads.
_INIT_JS = """\
(function () {
  var el = document.getElementById("swagger-ui");
  var options = JSON.parse(el.getAttribute("data-options"));
  options.domNode = el;
  if (options.oauth2RedirectUrl) {
    options.oauth2RedirectUrl = window.location.origin + options.oauth2RedirectUrl;
  }
  options.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
  options.layout = "BaseLayout";
  window.ui = SwaggerUIBundle(options);
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<link rel="stylesheet" href="{root}{assets}/swagger-ui.css">
<link rel="icon" href="{root}{assets}/favicon.png">
</head>
<body>
<div id="swagger-ui" data-options="{options}"></div>
<script src="{root}{assets}/swagger-ui-bundle.js"></script>
<script src="{root}{init}"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Replace FastAPI's CDN pages (``/docs``, ``/redoc``) with the self-hosted ``/docs``.

    Keeps FastAPI's ``/docs/oauth2-redirect`` (no CDN) and ``/openapi.json``.
    """
    cdn_pages = {app.docs_url, app.redoc_url}
    app.router.routes[:] = [
        r for r in app.router.routes if getattr(r, "path", None) not in cdn_pages
    ]
    app.docs_url, app.redoc_url = DOCS_PATH, None
    app.mount(
        ASSETS_PATH,
        StaticFiles(directory=str(files("fastapi_offline") / "static")),
        name="docs-assets",
    )
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url

    async def docs_page(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        options = {
            "url": f"{root}{app.openapi_url}",
            "deepLinking": True,
            "persistAuthorization": True,
            "displayRequestDuration": True,
        }
        if oauth2_redirect:
            options["oauth2RedirectUrl"] = f"{root}{oauth2_redirect}"
        page = _PAGE.format(
            title=html.escape(f"{app.title} - Swagger UI"),
            root=root,
            assets=ASSETS_PATH,
            init=INIT_PATH,
            options=html.escape(json.dumps(options), quote=True),
        )
        return HTMLResponse(page, headers={"Content-Security-Policy": CSP})

    async def init_script(_: Request) -> Response:
        return Response(
            _INIT_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache"},
        )

    app.add_route(DOCS_PATH, docs_page, include_in_schema=False)
    app.add_route(INIT_PATH, init_script, include_in_schema=False)
