"""The one mapping of errors to HTTP answers: ``{"error": {"code", "message", "request_id"}}``.

A :class:`~.errors.DocsumError` is answered with its class's status and code; FastAPI's own
validation errors and Starlette's HTTP errors are answered in the same shape, so a client
has one error format to parse. :func:`install_error_handlers` registers it once on an app.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from .errors import CLIENT_ERROR_CODES, DocsumError, InvalidInput
from .logs import request_id_var

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    """What went wrong; some errors add fields (e.g. ``upstream``, ``version``)."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Stable machine-readable code, e.g. invalid_input.")
    message: str = Field(description="What went wrong and what to do about it.")
    request_id: str | None = Field(description="The X-Request-ID of the request.")


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of error statuses: the error body, with what each status means."""
    return {
        status: {"model": ErrorBody, "description": description}
        for status, description in descriptions.items()
    }


#: Error answers every route may give, for the OpenAPI documents.
ERROR_RESPONSES = error_responses(
    {
        400: "The body could not be parsed.",
        408: "The request body did not arrive in time.",
        413: "The body, text or image is over a limit.",
        415: "The file or body is of a type this route does not read.",
        422: "The request is well-formed but invalid (the message says which field and why).",
        503: "Not ready, shutting down, or the queue is full (see Retry-After).",
        504: "The request took longer than its time limit.",
    }
)


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


#: What FastAPI says when a body is not decodable (e.g. invalid UTF-8); we say what to do.
_FASTAPI_BODY_ERROR = "There was an error parsing the body"


def validation_message(errors: Sequence[Any]) -> str:
    """Pydantic's errors as one line: ``field: why`` for the first five."""
    parts = []
    for err in errors[:5]:
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
        return JSONResponse(
            error_body(InvalidInput.code, validation_message(exc.errors())),
            status_code=InvalidInput.status,
        )

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
            error_body(CLIENT_ERROR_CODES.get(exc.status_code, "http_error"), message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    app.add_exception_handler(DocsumError, on_docsum)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
