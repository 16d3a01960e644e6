"""JSON logs with the request id of the request being served.

The request id lives in a context variable set by the request middleware, so every log line
written while serving a request carries it, including lines from the batcher's worker thread
(the batcher copies the context of the request that submitted the item).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "docsum_request_id", default=None
)

# Attributes every LogRecord has; anything else passed through `extra=` is emitted as a field.
_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def new_request_id() -> str:
    """A fresh request id: 32 random hex characters."""
    return os.urandom(16).hex()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, service and extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._second = -1
        self._stamp = ""  # the formatted time of ``_second``: one strftime per second

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        doc: dict[str, Any] = {
            "ts": f"{self._stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid is not None:
            doc["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger (ours, uvicorn's) to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # We write our own access log line (with the request id); uvicorn's would be a duplicate.
    logging.getLogger("uvicorn.access").disabled = True


class Tally:
    """Events too frequent to log one line each (refused connections, failed keys): counted
    by kind and client, and logged as one line at most every ``every_s`` seconds, when the
    next event comes."""

    #: Clients tracked per line: a flood from many addresses costs bounded memory.
    MAX_CLIENTS = 1000

    def __init__(self, logger: logging.Logger, message: str, every_s: float = 10.0) -> None:
        self.logger = logger
        self.message = message
        self.every_s = every_s
        self._since = -float("inf")
        self._kinds: dict[str, int] = {}
        self._clients: dict[str, int] = {}

    def add(self, kind: str, client: str) -> None:
        self._kinds[kind] = self._kinds.get(kind, 0) + 1
        if client in self._clients or len(self._clients) < self.MAX_CLIENTS:
            self._clients[client] = self._clients.get(client, 0) + 1
        now = time.monotonic()
        if now - self._since < self.every_s:
            return
        top = max(self._clients, key=self._clients.__getitem__)
        window = now - self._since
        self.logger.warning(
            self.message,
            extra={
                "counts": self._kinds,
                "clients": len(self._clients),
                "top_client": top,
                "top_client_count": self._clients[top],
                "window_s": round(window, 1) if window < 1e9 else None,
            },
        )
        self._since, self._kinds, self._clients = now, {}, {}
