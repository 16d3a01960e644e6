"""``POST /api/v1/summarize`` served in plain ASGI, ahead of FastAPI's router.

The route forwards a JSON body to the summarizer and passes its answer back: the gateway has
nothing to parse, validate or build. Through FastAPI (exception layers, routing, the
endpoint's wrappers, Request and Response objects) that path would cost as much CPU as the
forwarding itself (docs/decisions.md, "Where the gateway's CPU goes"); here it is a
dictionary lookup. It runs inside the kit's request middleware and the key check, so the
request id, body limits, access log and metrics are those of every other route.

The route is still declared in ``routes.py``: the declaration documents it (OpenAPI), names
it in the metrics, and answers what this lane does not take — a body that is not JSON (415)
or a method other than POST (405).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..common.errors import DocsumError
from ..common.http_errors import send_error
from .pins import HEADER, parse_pins
from .upstreams import Upstream, UpstreamResponse

_PIN_HEADER = HEADER.lower().encode("latin-1")


@dataclass(frozen=True)
class Lane:
    """A gateway path forwarded as it is to ``upstream``'s ``path``."""

    route: Any  # the declared route: its path names the request in the metrics
    upstream: Upstream
    path: str


def media_type(content_type: str | None) -> str:
    """``application/json`` from ``application/json; charset=utf-8``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


async def forward_json(
    upstream: Upstream, path: str, body: bytes, pins: str | None
) -> UpstreamResponse:
    """Send a JSON body to ``upstream`` (pinned by the ``X-Docsum-Backend`` value ``pins``)."""
    return await upstream.call(
        "POST",
        path,
        content=body,
        content_type="application/json",
        pin=parse_pins(pins).for_upstream(upstream.name),
    )


def passed_on_headers(r: UpstreamResponse) -> list[tuple[bytes, bytes]]:
    """What the gateway's answer carries of an upstream's: its type, and the version."""
    return [
        (b"content-type", r.content_type.encode("latin-1")),
        (b"content-length", str(len(r.content)).encode()),
        (_PIN_HEADER, r.version.encode("latin-1")),
    ]


class PassThrough:
    """Serve each ``lanes`` path's JSON POSTs; everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp, lanes: list[Lane]) -> None:
        self.app = app
        self.lanes = {lane.route.path: lane for lane in lanes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lanes.get(scope["path"]) if scope["type"] == "http" else None
        if lane is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        content_type = pins = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == _PIN_HEADER:
                pins = value.decode("latin-1")
        if media_type(content_type) != "application/json":
            await self.app(scope, receive, send)  # the declared route's 415
            return
        scope["route"] = lane.route
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        try:
            r = await forward_json(lane.upstream, lane.path, body, pins)
        except DocsumError as exc:
            await send_error(send, exc)
            return
        headers = passed_on_headers(r)
        await send({"type": "http.response.start", "status": r.status, "headers": headers})
        await send({"type": "http.response.body", "body": r.content})


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client disconnected first.

    The kit's request middleware wraps ``receive``: a body over the limit or too slow raises
    its 413 / 408, which that middleware answers.
    """
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
