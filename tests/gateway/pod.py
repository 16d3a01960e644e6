"""A stand-in pod for the balancing tests, served by uvicorn: it answers which pod it is.

``python -m uvicorn tests.gateway.pod:app --host 127.0.0.2 --port N`` with ``POD_NAME`` (its
name in answers) and ``POD_MODE``: ``ok`` answers every call 200 ``{"pod", "host"}`` (the Host
header it got); ``503`` passes its readiness probe yet answers every call 503, as an
overloaded or broken pod does. ``GET /calls`` tells how many calls (not probes) it received.
"""

from __future__ import annotations

import json
import os
from typing import Any

NAME = os.environ.get("POD_NAME", "pod")
MODE = os.environ.get("POD_MODE", "ok")
_calls = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _calls
    assert scope["type"] == "http"
    while (await receive()).get("more_body"):
        pass
    path = scope["path"]
    status = 200
    body: dict[str, object] = {"status": "ready"}
    if path == "/calls":
        body = {"calls": _calls}
    elif path not in ("/readyz", "/livez"):
        _calls += 1
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        if MODE == "503":
            status, body = 503, {"error": {"code": "overloaded", "message": f"{NAME} is down"}}
        else:
            body = {"pod": NAME, "host": host}
    content = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
