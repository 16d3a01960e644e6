"""The gateway app in process over fake backends: the harness of the in-process tests.

The whole gateway app runs (key check, pass-through lane, routes, pipeline, the upstream calls
with their retries and circuits, the error table); only the network exchange with a backend is
replaced by :class:`FakeBackends`, which answers as a service would.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from docsum.gateway.app import build_app
from docsum.gateway.auth import hash_key
from docsum.gateway.routing import Backend
from docsum.gateway.settings import GatewaySettings, UpstreamSettings
from docsum.gateway.transport import Answer, Headers
from docsum.gateway.upstreams import Upstream

KEY = "in-process-key"
AUTH = {"X-API-Key": KEY}


@dataclass
class Call:
    """One exchange a fake backend received."""

    version: str
    method: str
    path: str
    body: bytes
    headers: dict[str, str]

    @property
    def filename(self) -> str:
        """The uploaded file's name, in a multipart body."""
        m = re.search(rb'filename="([^"]*)"', self.body)
        return m[1].decode() if m else ""


#: What a fake backend answers to a call: (status, headers, body), or an exception to raise.
Responder = Callable[[Call], "Answer | Exception"]


@dataclass
class FakeBackends:
    """A :class:`~docsum.gateway.transport.Transport` whose backends answer in process."""

    respond: Responder
    calls: list[Call] = field(default_factory=list)

    async def send(
        self, backend: Backend, method: str, path: str, content: bytes, headers: Headers
    ) -> Answer:
        call = Call(
            backend.version,
            method,
            path,
            content,
            {k.decode("latin-1"): v.decode("latin-1") for k, v in headers},
        )
        self.calls.append(call)
        answer = self.respond(call)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def aclose(self) -> None:
        pass


def json_answer(status: int, body: object, *headers: tuple[bytes, bytes]) -> Answer:
    return status, [(b"content-type", b"application/json"), *headers], json.dumps(body).encode()


def ocr_reads(call: Call) -> Answer:
    """The OCR service: one page whose one line names the file it was sent."""
    line = {"text": f"The text of {call.filename}.", "confidence": 0.9, "box": [0, 0, 9, 9]}
    page = {"number": 1, "width": 10, "height": 10, "skew_deg": 0.0, "lines": [line]}
    model = {"name": "fake-ocr", "version": "1"}
    return json_answer(200, {"text": line["text"], "pages": [page], "model": model})


def summarizer_summarizes(call: Call) -> Answer:
    """The summarizer: the first sentence of the text is the summary."""
    text = json.loads(call.body)["text"]
    first = text.split(".")[0].strip() + "."
    sentences = [{"index": 0, "text": first, "score": 1.0}]
    model = {"name": "fake-summarizer", "version": "1"}
    return json_answer(200, {"summary": first, "sentences": sentences, "model": model})


def overloaded(call: Call) -> Answer:
    body = {"error": {"code": "overloaded", "message": "queue full", "request_id": None}}
    return json_answer(503, body, (b"retry-after", b"3"))


def refused(call: Call) -> Exception:
    return httpx.ConnectError("connection refused")


DOCUMENTS = "/api/v1/documents:summarize"


@dataclass
class Gateway:
    """An in-process gateway app, its client, and the fake backends behind it."""

    app: Any
    client: httpx.AsyncClient
    ocr: FakeBackends
    summarizer: FakeBackends

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**AUTH, **kwargs.pop("headers", {})}
        return await self.client.post(path, headers=headers, **kwargs)

    async def pdf(self, data: bytes) -> httpx.Response:
        return await self.post(DOCUMENTS, files={"file": ("d.pdf", data, "application/pdf")})


GatewayFactory = Callable[..., Gateway]

#: The backends file: one stable version of each upstream, and a summarizer canary of weight 0.
#: Addresses, not host names: a name goes to the system resolver, which takes seconds to give
#: up where no DNS server answers (as in CI), and the test's event loop waits for it to end.
BACKENDS = {
    "ocr": [{"url": "http://127.0.0.1:8081", "version": "stable"}],
    "summarizer": [
        {"url": "http://127.0.0.1:8082", "version": "stable"},
        {"url": "http://127.0.0.2:8082", "version": "canary", "weight": 0},
    ],
}


@asynccontextmanager
async def gateways(tmp_path: Path, **calls: Any) -> AsyncIterator[GatewayFactory]:
    """``make(ocr=responder, summarizer=responder, **settings)`` builds a gateway whose upstream
    calls have no backoff (and ``calls``); every one made is closed at the end, its PDF worker
    processes too, before the test's event loop ends."""
    keys = tmp_path / "keys"
    keys.write_text(f"tests:{hash_key(KEY)}\n")
    backends = tmp_path / "backends.json"
    backends.write_text(json.dumps(BACKENDS))
    made: list[Gateway] = []

    def make(
        ocr: Responder = ocr_reads, summarizer: Responder = summarizer_summarizes, **extra: Any
    ) -> Gateway:
        upstream = UpstreamSettings(backoff_base_ms=0, backoff_max_ms=0, **calls)
        settings = GatewaySettings(
            api_keys_file=keys,
            backends_file=backends,
            reload_interval_s=0,
            ocr=upstream,
            summarizer=upstream,
            **extra,
        )
        fakes = FakeBackends(ocr), FakeBackends(summarizer)
        upstreams = {
            name: Upstream(name, getattr(settings, name), transport=fake)
            for name, fake in zip(("ocr", "summarizer"), fakes, strict=True)
        }
        app = build_app(settings, upstreams=upstreams)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
        made.append(Gateway(app, client, *fakes))
        return made[-1]

    try:
        yield make
    finally:
        for gw in made:
            await gw.client.aclose()
            await gw.app.state.gateway.aclose()
