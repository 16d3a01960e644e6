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

A lane has its own body limit, far below the gateway's (the summarizer reads at most 1 MB of
text): a body over it is refused with 413 at once from its Content-Length, or as soon as it
passes the limit while it streams in, and the connection is closed; nothing more is read. The
call gets the request's deadline (``X-Docsum-Deadline`` upstream).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..common.deadline import within
from ..common.errors import DocsumError, PayloadTooLarge
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
    #: Largest body taken, in bytes (413 past it); None: the gateway's own limit only.
    max_body_bytes: int | None = None
    #: Seconds the whole call may take (504 past it); None: the upstream's timeout only.
    deadline_s: float | None = None


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
        content_type = pins = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == _PIN_HEADER:
                pins = value.decode("latin-1")
            elif name == b"content-length":
                length = value
        if media_type(content_type) != "application/json":
            await self.app(scope, receive, send)  # the declared route's 415
            return
        scope["route"] = lane.route
        try:
            limit = lane.max_body_bytes
            if (
                limit is not None
                and length is not None
                and length.isdigit()
                and int(length) > limit
            ):
                raise body_too_large(limit, close=False)
            body = await read_body(receive, limit)
            if body is None:
                return  # the client went away
            if lane.deadline_s is None:
                r = await forward_json(lane.upstream, lane.path, body, pins)
            else:
                async with within(lane.deadline_s, "the call"):
                    r = await forward_json(lane.upstream, lane.path, body, pins)
        except DocsumError as exc:
            await send_error(send, exc)
            return
        headers = passed_on_headers(r)
        await send({"type": "http.response.start", "status": r.status, "headers": headers})
        await send({"type": "http.response.body", "body": r.content})


def body_too_large(limit: int, *, close: bool) -> PayloadTooLarge:
    """The 413 of a body over a route's ``limit``. ``close``: the connection is closed after
    it (a body cut mid-stream); else the server reads the rest of the body and drops it
    (refused from its Content-Length, the client may read the answer only once it has sent
    everything)."""
    return PayloadTooLarge(
        f"the request body is over this route's limit of {limit:,} bytes; send less",
        headers={"Connection": "close"} if close else None,
        limit="max_body_bytes",
        allowed=limit,
    )


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body, or None if the client disconnected first; 413 as soon as it
    passes ``limit`` bytes.

    The kit's request middleware wraps ``receive``: a body over the gateway's limit or too
    slow raises its 413 / 408, which that middleware answers.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise body_too_large(limit, close=True)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
