"""Typed errors: what went wrong, with the HTTP status and stable code it is answered with.

Framework-free, so model code can raise them without importing the web server; the HTTP
mapping (handlers, body shape, OpenAPI) is in :mod:`.http_errors`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DocsumError(Exception):
    """Base of every error docsum answers on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.details = details


class BadRequest(DocsumError):
    status, code = 400, "bad_request"


class Unauthorized(DocsumError):
    status, code = 401, "unauthorized"


class Forbidden(DocsumError):
    """A valid key, asking for what it may not have."""

    status, code = 403, "forbidden"


class NotFound(DocsumError):
    """No route at this path (the router's 404)."""

    status, code = 404, "not_found"


class MethodNotAllowed(DocsumError):
    """The path exists, not with this method (the router's 405)."""

    status, code = 405, "method_not_allowed"


class RequestTimeout(DocsumError):
    """The client did not send its whole body in time (a slow-drip upload)."""

    status, code = 408, "request_timeout"


class Conflict(DocsumError):
    """The request contradicts an earlier one (an Idempotency-Key reused with another body)."""

    status, code = 409, "conflict"


class PayloadTooLarge(DocsumError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(DocsumError):
    status, code = 415, "unsupported_media_type"


class InvalidInput(DocsumError):
    status, code = 422, "invalid_input"


class RateLimited(DocsumError):
    status, code = 429, "rate_limited"


class ClientDisconnected(DocsumError):
    """The client hung up before the answer: its work was stopped (nginx's 499, logged only)."""

    status, code = 499, "client_closed_request"


class UpstreamError(DocsumError):
    status, code = 502, "upstream_error"


class Overloaded(DocsumError):
    """The bounded queue is full: come back after ``Retry-After`` seconds."""

    status, code = 503, "overloaded"

    def __init__(self, message: str, *, retry_after_s: int = 1, **details: Any):
        super().__init__(message, headers={"Retry-After": str(retry_after_s)}, **details)


class ModelNotReady(DocsumError):
    status, code = 503, "model_not_ready"


class UpstreamUnavailable(DocsumError):
    status, code = 503, "upstream_unavailable"


class JobsUnavailable(DocsumError):
    """Async jobs are not configured here, or their store (Redis) does not answer."""

    status, code = 503, "jobs_unavailable"


class ShuttingDown(DocsumError):
    status, code = 503, "shutting_down"


class Timeout(DocsumError):
    status, code = 504, "timeout"


class UpstreamTimeout(DocsumError):
    status, code = 504, "upstream_timeout"


def _subclasses(cls: type[DocsumError]) -> list[type[DocsumError]]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


#: The code of each client-error status. Each 4xx status has one class, so a bare status
#: (the router's 404 or 405, a body FastAPI cannot parse: 400) is answered with its code.
CLIENT_ERROR_CODES: dict[int, str] = {
    c.status: c.code for c in _subclasses(DocsumError) if 400 <= c.status < 500
}
