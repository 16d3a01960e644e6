"""The public API, ``/api/v1/…``: every route needs an API key and counts against its limit."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from ..common.contracts import OCRResponse, SummarizeRequest, SummarizeResponse
from ..common.deadline import cancel_on_disconnect
from ..common.errors import BadRequest, ClientDisconnected, InvalidInput, UnsupportedMediaType
from ..common.http_errors import error_responses, validation_message
from ..common.sniff import IMAGE_KINDS, MEDIA_TYPES, SUPPORTED, sniff
from .costs import bounded_upload, charge_pages, image_pages
from .passthrough import forward_json, media_type, read_body
from .pins import HEADER, Pins, parse_pins
from .pipeline import SummaryParams, UpstreamAnswered
from .schemas import DocumentSummary
from .state import Gateway
from .upstreams import UpstreamResponse

#: The summarizer's route behind ``/api/v1/summarize``.
SUMMARIZE_PATH = "/v1/summarize"


def _multipart(fields: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI request body: a multipart upload with a ``file`` and the given form fields."""
    properties = {"file": {"type": "string", "format": "binary"}, **fields}
    schema = {"type": "object", "required": ["file"], "properties": properties}
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schema}},
        }
    }


UPLOAD_FORM = _multipart(
    {
        "max_sentences": {"type": "integer", "minimum": 1, "maximum": 1000},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    }
)
_OCR_FORM = _multipart({"mode": {"type": "string", "enum": ["page", "line"]}})
_SUMMARIZE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": SummarizeRequest.model_json_schema()}},
    }
}


def _passed_on(r: UpstreamResponse) -> Response:
    return Response(
        r.content, status_code=r.status, media_type=r.content_type, headers={HEADER: r.version}
    )


def _media_type(request: Request) -> str:
    return media_type(request.headers.get("content-type"))


async def read_upload(request: Request) -> tuple[UploadFile, dict[str, str]]:
    """The multipart form's ``file`` and its other fields (415 if it is not a form)."""
    if _media_type(request) != "multipart/form-data":
        raise UnsupportedMediaType(
            "send the document as multipart/form-data with the file in the field 'file' "
            "(curl -F file=@document.pdf)"
        )
    form = await request.form(max_files=1, max_fields=8)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise BadRequest("the form has no file in the field 'file'")
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return upload, fields


async def read_typed(upload: UploadFile, allowed: frozenset[str] | None) -> tuple[bytes, str]:
    """The file's bytes and kind by magic bytes; 415 if it is not one we read."""
    data = await upload.read()
    kind = sniff(data[:2048])
    if kind is None or (allowed is not None and kind not in allowed):
        claimed = upload.content_type or "no content type"
        what = "a PDF" if kind == "pdf" else f"not a {SUPPORTED} file ({claimed})"
        raise UnsupportedMediaType(f"the file is {what}; send a {_accepted(allowed)} file")
    return data, kind


def _accepted(allowed: frozenset[str] | None) -> str:
    if allowed is None:
        return SUPPORTED
    return "PNG, JPEG, TIFF, BMP or WebP (PDFs go to /api/v1/documents:summarize)"


def summary_params(fields: dict[str, str]) -> SummaryParams:
    """The form's length fields, checked by the JSON /summarize's own model: the same
    mistake gets the same 422 on every route."""
    given = {k: fields[k] for k in ("max_sentences", "ratio") if fields.get(k)}
    try:
        checked = SummarizeRequest.model_validate({"text": "", **given}, strict=False)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc.errors())) from None
    return SummaryParams(checked.max_sentences, checked.ratio)


def check_pin(gateway: Gateway, pinned: Pins) -> None:
    """400 for a plain pin of a version no upstream has."""
    if pinned.default is not None and not any(
        pinned.default in u.routes.versions for u in gateway.upstreams.values()
    ):
        raise BadRequest(f"{HEADER}: no upstream has a version {pinned.default!r}")


async def current_gateway(request: Request) -> Gateway:
    """The gateway the app was built with (``app.state.gateway``)."""
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(current_gateway)]


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operationId: its function's name."""
    return route.name


def api_router(tag: str, errors: dict[int, str]) -> APIRouter:
    """A router of ``/api/v1`` routes: they need an API key (checked before routing, by
    ``guard.ApiGuard``), may answer ``errors`` besides 401, and are named by their functions."""
    return APIRouter(
        prefix="/api/v1",
        tags=[tag],
        generate_unique_id_function=operation_id,
        responses=error_responses(
            {401: "No valid API key (X-API-Key or Authorization: Bearer).", **errors}
        ),
    )


router = api_router(
    "api",
    {
        429: "This key's rate limit is spent (see Retry-After).",
        502: "An upstream answered with an error (the body names it).",
    },
)


def _forwarding(path: str, summary: str, body: dict[str, Any], answer: type[BaseModel]) -> Any:
    """A route that passes an upstream's answer on: its 200 documented by ``answer``, its
    request by ``body`` (read by the route itself, not by FastAPI)."""
    return router.post(
        path, summary=summary, openapi_extra=body, responses={200: {"model": answer}}
    )


@_forwarding(
    "/summarize",
    "Summarize a text (the summarizer service's /v1/summarize).",
    _SUMMARIZE_BODY,
    SummarizeResponse,
)
async def summarize(request: Request, gateway: GatewayDep) -> Response:
    # JSON bodies are forwarded before routing, by ``passthrough.PassThrough``; this
    # endpoint answers the rest (415) and serves JSON only where that lane is not mounted.
    if _media_type(request) != "application/json":
        raise UnsupportedMediaType(
            "send the text as JSON with 'content-type: application/json': "
            '{"text": "...", "max_sentences": 3}'
        )
    body = await read_body(request.receive, gateway.settings.summarize_max_body_bytes)
    if body is None:
        raise ClientDisconnected("the client closed the connection before its body was read")
    r = await forward_json(
        gateway.upstreams["summarizer"], SUMMARIZE_PATH, body, request.headers.get(HEADER)
    )
    return _passed_on(r)


@_forwarding(
    "/ocr",
    "Read the text of an image or a multi-page TIFF (the OCR service's /v1/ocr).",
    _OCR_FORM,
    OCRResponse,
)
async def ocr(request: Request, gateway: GatewayDep) -> Response:
    async with bounded_upload(request, gateway):
        upload, fields = await read_upload(request)
        data, kind = await read_typed(upload, IMAGE_KINDS)
        pages = await image_pages(data, kind, gateway.settings.rate_limit_burst)
        charge_pages(request, gateway, pages)
        form = {"mode": fields["mode"]} if "mode" in fields else None
        call = gateway.upstreams["ocr"].call(
            "POST",
            "/v1/ocr",
            files={"file": (upload.filename or f"upload.{kind}", data, MEDIA_TYPES[kind])},
            data=form,
            pin=parse_pins(request.headers.get(HEADER)).for_upstream("ocr"),
        )
        return _passed_on(await cancel_on_disconnect(request.receive, call))


@router.post(
    "/documents:summarize",
    summary="Read a document (image, multi-page TIFF or PDF) and summarize it.",
    openapi_extra=UPLOAD_FORM,
    response_model=DocumentSummary,
)
async def summarize_document(request: Request, gateway: GatewayDep) -> Any:
    start = time.perf_counter()
    async with bounded_upload(request, gateway):
        upload, fields = await read_upload(request)
        params = summary_params(fields)
        pinned = parse_pins(request.headers.get(HEADER))
        data, kind = await read_typed(upload, None)
        check_pin(gateway, pinned)
        if kind != "pdf":  # a PDF's pages are counted by the pipeline
            pages = await image_pages(data, kind, gateway.settings.rate_limit_burst)
            charge_pages(request, gateway, pages)
        run = gateway.pipeline.run(
            data,
            kind,
            upload.filename or "",
            params,
            pinned,
            time.perf_counter() - start,
            charge=lambda pages: charge_pages(request, gateway, pages),
        )
        try:
            return await cancel_on_disconnect(request.receive, run)
        except UpstreamAnswered as answered:
            return _passed_on(answered.response)
