"""What an upload may cost the gateway, charged before the work: the bytes it holds, the time
it may take, the rate-limit tokens its pages spend.

- The upload's bytes (its Content-Length, else the largest body allowed) are held against
  ``max_inflight_body_bytes`` before its body is read (503 + Retry-After when they do not fit).
- The request runs under one deadline, ``request_timeout_s`` (504 past it), which every
  upstream call carries along (``X-Docsum-Deadline``).
- A document costs one rate-limit token per page: the key check took one, the others are
  taken as soon as the page count is known — a TIFF's frames from their headers, a PDF's pages
  from its page tree — before any page is read (429 + Retry-After when the key's bucket
  lacks them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request

from ..common.deadline import within
from ..common.errors import RateLimited
from ..common.frames import frame_sizes
from . import metrics
from .state import Gateway


def _declared_size(request: Request, default: int) -> int:
    length = request.headers.get("content-length", "")
    return int(length) if length.isdigit() else default


@asynccontextmanager
async def bounded_upload(request: Request, gateway: Gateway) -> AsyncIterator[None]:
    """Hold the upload's bytes and run the block under the request's deadline; when it ends,
    the idle trim is (re)armed, so a burst of uploads gives its memory back afterwards."""
    s = gateway.settings
    try:
        with gateway.uploads.hold(_declared_size(request, s.max_body_bytes)):
            async with within(s.request_timeout_s, "the request"):
                yield
    finally:
        gateway.idle_trim.done()


def charge_pages(request: Request, gateway: Gateway, pages: int) -> None:
    """Take the tokens of a document's pages after the first from its key's bucket."""
    caller = getattr(request.state, "caller", None)
    s = gateway.settings
    # A document of more pages than the burst costs the whole burst: a full bucket lets it in.
    extra = min(pages, s.rate_limit_burst) - 1
    if extra <= 0 or caller is None:
        return
    wait_s = gateway.limiter.check(caller, extra)
    if wait_s:
        metrics.RATE_LIMITED.inc()
        counted = f"more than {s.rate_limit_burst}" if pages > s.rate_limit_burst else pages
        raise RateLimited(
            f"the document has {counted} pages, and each page counts as one request against "
            f"the rate limit of {s.rate_limit_rps:g} requests/s (burst {s.rate_limit_burst}); "
            f"retry in {wait_s} s",
            headers={"Retry-After": str(wait_s), **gateway.limiter.headers(caller)},
        )


async def image_pages(data: bytes, kind: str, most: int) -> int:
    """Pages of an image file (a TIFF's frames), read from its headers, counting to ``most``;
    1 when Pillow cannot read it (the OCR service will say why)."""
    try:
        return len(await asyncio.to_thread(frame_sizes, data, kind, most))
    except Exception:  # Pillow raises a zoo of types for broken files
        return 1
