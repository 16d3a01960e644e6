"""A minimal service on the kit, for tests of what the kit alone does (deadlines, limits).

``python -m tests.reliability.kit_app PORT [h11|auto] [PROBE_PORT]``: ``h11`` hides httptools
so uvicorn uses its pure-Python protocol, as in the OCR and summarizer images (only the
gateway's extra installs httptools). ``GET /big?mb=N`` answers N MB (a write-timeout case).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response


def main(port: int, protocol: str, probe_port: int | None = None) -> None:
    if protocol == "h11":
        sys.modules["httptools"] = None  # type: ignore[assignment]
    from docsum.common.health import Health
    from docsum.common.logs import configure_logging
    from docsum.common.service import create_app, serve
    from docsum.common.settings import ServiceSettings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    settings = ServiceSettings(
        port=port,
        header_timeout_s=2.0,
        body_timeout_s=2.0,
        write_timeout_s=1.0,
        probe_port=probe_port,
    )
    app = create_app(
        title="kit", version="0", settings=settings, health=Health(ready=True), lifespan=lifespan
    )

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    @app.get("/big")
    async def big(mb: int = 10) -> Response:
        return Response(b"x" * (mb << 20), media_type="application/octet-stream")

    configure_logging("kit", "INFO")
    serve(app, settings)


if __name__ == "__main__":
    main(
        int(sys.argv[1]),
        sys.argv[2] if len(sys.argv) > 2 else "auto",
        int(sys.argv[3]) if len(sys.argv) > 3 else None,
    )
