"""Typed errors and the one table that maps them to HTTP answers.

Code raises a :class:`DocsumError` subclass; the handlers registered by
:func:`install_error_handlers` turn it into ``{"error": {"code", "message", "request_id"}}``
with the status from the class. FastAPI's own validation errors and Starlette's HTTP errors
are answered in the same shape, so a client has one error format to parse.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from .logs import request_id_var

log = logging.getLogger(__name__)


class DocsumError(Exception):
    """Base of every error docsum answers on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.details = details


class InvalidInput(DocsumError):
    status, code = 422, "invalid_input"


class BadRequest(DocsumError):
    status, code = 400, "bad_request"


class Unauthorized(DocsumError):
    status, code = 401, "unauthorized"


class NotFound(DocsumError):
    status, code = 404, "not_found"


class PayloadTooLarge(DocsumError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(DocsumError):
    status, code = 415, "unsupported_media_type"


class RateLimited(DocsumError):
    status, code = 429, "rate_limited"


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


class ShuttingDown(DocsumError):
    status, code = 503, "shutting_down"


class Timeout(DocsumError):
    status, code = 504, "timeout"


class UpstreamTimeout(DocsumError):
    status, code = 504, "upstream_timeout"


class ErrorDetail(BaseModel):
    """What went wrong; some errors add fields (e.g. ``upstream``, ``version``)."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Stable machine-readable code, e.g. invalid_input.")
    message: str = Field(description="What went wrong and what to do about it.")
    request_id: str | None = Field(description="The X-Request-ID of the request.")


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


#: Error answers every route may give, for the OpenAPI documents (the table above says when).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "The body could not be parsed.",
        408: "The request body did not arrive in time.",
        413: "The body, text or image is over a limit.",
        415: "The file or body is of a type this route does not read.",
        422: "The request is well-formed but invalid (the message says which field and why).",
        503: "Not ready, shutting down, or the queue is full (see Retry-After).",
        504: "The request took longer than its time limit.",
    }.items()
}


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The JSON body of every error answer."""
    err: dict[str, Any] = {"code": code, "message": message, "request_id": request_id_var.get()}
    err.update(details)
    return {"error": err}


def error_json(code: str, message: str, **details: Any) -> bytes:
    """:func:`error_body` as bytes, written as FastAPI's JSONResponse writes it."""
    body = error_body(code, message, **details)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _log_server_side(exc: DocsumError) -> None:
    if exc.status >= 500:
        log.warning("request failed", extra={"error_code": exc.code, "detail": exc.message})


async def send_error(send: Send, exc: DocsumError) -> None:
    """Answer ``exc`` in plain ASGI, as the handlers below do, for code that runs before
    FastAPI's routing (the gateway's key check and its pass-through route)."""
    _log_server_side(exc)
    body = error_json(exc.code, exc.message, **exc.details)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()),
    ]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _http_code(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        415: "unsupported_media_type",
        429: "rate_limited",
    }.get(status, "http_error")


#: What FastAPI says when a body is not decodable (e.g. invalid UTF-8); we say what to do.
_FASTAPI_BODY_ERROR = "There was an error parsing the body"


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers once on the app: every error leaves in the same shape.

    Unexpected exceptions are answered 500 by the request middleware, which still knows the
    request id (Starlette's outermost error handler runs after it has been reset).
    """

    async def on_docsum(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DocsumError)
        _log_server_side(exc)
        return JSONResponse(
            error_body(exc.code, exc.message, **exc.details),
            status_code=exc.status,
            headers=exc.headers,
        )

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse(error_body("invalid_input", _validation_message(exc)), status_code=422)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message = str(exc.detail)
        if message == _FASTAPI_BODY_ERROR:
            # Bytes that are not UTF-8, or JSON nested past the parser's recursion limit.
            message = (
                "the request body could not be parsed: send UTF-8 encoded JSON, "
                "nested less than 500 levels deep"
            )
        return JSONResponse(
            error_body(_http_code(exc.status_code), message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    app.add_exception_handler(DocsumError, on_docsum)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
