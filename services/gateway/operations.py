"""Async documents as long-running operations (Google AIP-151), queued in Redis for the workers.

- ``POST /api/v1/documents:summarizeAsync``: the inputs and checks of ``documents:summarize``;
  202 with the operation and a ``Location``. The upload goes to the store in chunks.
- ``GET /api/v1/operations/{id}[?wait=30s]``: its state and progress; when done, ``response``
  (the synchronous route's body) or ``error``. ``wait`` holds the answer until the job ends
  or that long (a Redis notification wakes it: no polling).
- ``GET /api/v1/operations``: the caller's own, newest first, ``page_size``/``page_token``.
- ``POST /api/v1/operations/{id}:cancel``, ``DELETE /api/v1/operations/{id}``.

A key sees its own operations only (404 for any other). Per key, the jobs queued or running
and the bytes stored are limited (429 naming the limit). ``Idempotency-Key``: the same key
and request → the same operation; the same key with another request → 409.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from redis.exceptions import RedisError

from ..common.errors import Conflict, InvalidInput, JobsUnavailable, NotFound, RateLimited
from ..jobs import metrics
from ..jobs.notify import DoneWaiters
from ..jobs.store import ENDED, JobStore, Refused, connect
from .costs import bounded_upload, charge_pages, image_pages
from .pins import HEADER, parse_pins
from .routes import (
    UPLOAD_FORM,
    GatewayDep,
    api_router,
    check_pin,
    read_typed,
    read_upload,
    summary_params,
)
from .settings import GatewaySettings

PREFIX = "/api/v1"
_ID = re.compile(r"^[0-9a-f]{32}$")
_WAIT = re.compile(r"^(\d+(?:\.\d+)?)s?$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
#: Longest wait on one notification before the job's state is read again.
_RECHECK_S = 5.0


class AsyncJobs:
    """The gateway's side of the jobs: the store and the end-of-job notifications."""

    def __init__(self, settings: GatewaySettings) -> None:
        assert settings.redis_url
        self.redis = connect(settings.redis_url, settings.redis_password_file)
        self.store = JobStore(self.redis)
        self.waiters = DoneWaiters(self.redis)
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    def configured(cls, settings: GatewaySettings) -> AsyncJobs | None:
        return cls(settings) if settings.redis_url else None

    def start(self) -> None:
        self._listener = asyncio.create_task(self.waiters.run(), name="job-notifications")

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.redis.aclose()


router = api_router(
    "operations",
    {
        404: "No such operation for this key.",
        429: "This key's rate limit, pending jobs or stored bytes are spent.",
        503: "Async jobs are not configured, or their store does not answer.",
    },
)


def _jobs(request: Request) -> AsyncJobs:
    jobs: AsyncJobs | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise JobsUnavailable(
            "async jobs are not configured on this gateway (DOCSUM_GATEWAY_REDIS_URL); "
            "use POST /api/v1/documents:summarize"
        )
    return jobs


@contextlib.contextmanager
def _store_answers() -> Iterator[None]:
    """A store that does not answer (Redis restarting) is a 503 to retry, not a 500."""
    try:
        yield
    except (RedisError, OSError):
        raise JobsUnavailable(
            "the job store does not answer; retry in a few seconds",
            headers={"Retry-After": "2"},
        ) from None


def _caller(request: Request) -> str:
    return str(request.state.caller)


def _iso(ms: str | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat(timespec="milliseconds")


def operation(job: dict[str, str], result: bytes | None = None) -> dict[str, Any]:
    """The AIP-151 operation of a job hash (and its result when it succeeded)."""
    state = job["state"]
    metadata: dict[str, Any] = {
        "state": state,
        "pages_done": int(job.get("pages_done") or 0),
        "pages_total": int(job.get("pages_total") or 0),
        "attempts": int(job.get("attempts") or 0),
        "create_time": _iso(job.get("created")),
        "start_time": _iso(job.get("started")),
        "end_time": _iso(job.get("finished")),
        "filename": job.get("filename", ""),
    }
    op: dict[str, Any] = {"name": f"operations/{job['id']}", "done": state in ENDED}
    if state == "succeeded" and result is not None:
        body = json.loads(result)
        metadata["backends"] = body.get("backends", {})
        metadata["timings_ms"] = body.get("timings_ms", {})
        op["response"] = body
    elif state in ENDED:
        error = json.loads(job.get("error") or "{}")
        op["error"] = {"code": "internal_error", "message": "no error was recorded"} | error
        if job.get("reason"):
            op["error"]["reason"] = job["reason"]
    op["metadata"] = metadata
    return op


async def _own_job(store: JobStore, op_id: str, caller: str) -> dict[str, str]:
    job = await store.job(op_id) if _ID.match(op_id) else None
    if job is None or job.get("owner") != caller:
        raise NotFound(f"no operation {op_id!r} (operations are kept for a while after their end)")
    return job


def _digest(data: bytes, kind: str, fields: dict[str, str], pins: str | None) -> str:
    h = hashlib.sha256(data)
    request = {"kind": kind, "fields": sorted(fields.items()), "pins": pins or ""}
    h.update(json.dumps(request).encode())
    return h.hexdigest()


def _idempotency_key(request: Request, caller: str) -> str:
    """The header's value hashed (any length and bytes stay out of Redis' key names)."""
    value = request.headers.get("idempotency-key")
    if value is None:
        return ""
    if not _IDEMPOTENCY_KEY.match(value):
        raise InvalidInput("Idempotency-Key must be 1 to 255 visible ASCII characters")
    return hashlib.sha256(f"{caller}\n{value}".encode()).hexdigest()


def _refused(refusal: Refused, s: GatewaySettings) -> Exception:
    if refusal.limit == "conflict":
        return Conflict(
            "this Idempotency-Key was used with another request (another file or fields); "
            "use a new key for a new request"
        )
    if refusal.limit == "pending":
        return RateLimited(
            f"this key has {refusal.current} jobs queued or running, the most it may have "
            f"({s.jobs_max_pending_per_key}); retry once some have finished",
            headers={"Retry-After": "5"},
            limit="jobs_max_pending_per_key",
            allowed=s.jobs_max_pending_per_key,
            current=refusal.current,
        )
    return RateLimited(
        f"this key stores {refusal.current:,} bytes of inputs and results; this document "
        f"would pass its {s.jobs_max_stored_bytes_per_key:,} (delete finished operations "
        "or wait for them to expire)",
        limit="jobs_max_stored_bytes_per_key",
        allowed=s.jobs_max_stored_bytes_per_key,
        current=refusal.current,
    )


def _accepted(op: dict[str, Any], new: bool) -> JSONResponse:
    op_id = op["name"].split("/", 1)[1]
    return JSONResponse(
        op, status_code=202 if new else 200, headers={"Location": f"{PREFIX}/operations/{op_id}"}
    )


@router.post(
    "/documents:summarizeAsync",
    summary="Queue a document (image, multi-page TIFF or PDF) to read and summarize; poll the "
    "operation for its progress and result.",
    openapi_extra=UPLOAD_FORM,
    status_code=202,
)
async def summarize_document_async(request: Request, gateway: GatewayDep) -> JSONResponse:
    jobs = _jobs(request)
    caller = _caller(request)
    s = gateway.settings
    idem = _idempotency_key(request, caller)
    async with bounded_upload(request, gateway):
        upload, fields = await read_upload(request)
        params = summary_params(fields)
        pin_header = request.headers.get(HEADER)
        check_pin(gateway, parse_pins(pin_header))
        data, kind = await read_typed(upload, None)
        pages = 1
        if kind != "pdf":  # a PDF's pages are counted when a worker opens it
            pages = await image_pages(data, kind, gateway.settings.rate_limit_burst)
            charge_pages(request, gateway, pages)
        digest = _digest(data, kind, fields, pin_header)
        fields_json = {
            "kind": kind,
            "filename": upload.filename or "",
            "params": json.dumps({"max_sentences": params.max_sentences, "ratio": params.ratio}),
            "pins": pin_header or "",
            "input_bytes": len(data),
            "pages_total": pages if kind != "pdf" else 0,
        }
        job_id = uuid.uuid4().hex
        with _store_answers():
            await jobs.store.upload(job_id, data)
            del data
            outcome = await jobs.store.submit(
                job_id,
                caller,
                fields_json,
                digest=digest,
                idempotency_key=idem,
                max_pending=s.jobs_max_pending_per_key,
                max_bytes=s.jobs_max_stored_bytes_per_key,
                ttl_s=s.jobs_result_ttl_s,
            )
            if isinstance(outcome, Refused):
                raise _refused(outcome, s)
            job = await jobs.store.job(outcome.job_id)
            if job is None:  # deleted at once by a concurrent request
                raise NotFound(f"operation {outcome.job_id!r} was deleted")
            result = await jobs.store.result(outcome.job_id) if outcome.new is False else None
    if outcome.new:
        metrics.SUBMITTED.inc()
    return _accepted(operation(job, result), outcome.new)


def _wait_s(value: str | None, s: GatewaySettings) -> float:
    if value is None:
        return 0.0
    m = _WAIT.match(value.strip())
    if m is None:
        raise InvalidInput(f"wait must be a duration in seconds, like 30s (not {value!r})")
    # Bounded below the request's own time limit, so a long poll never ends in a 504.
    return min(float(m.group(1)), s.jobs_max_wait_s, max(0.0, s.request_timeout_s - 5.0))


@router.get(
    "/operations/{op_id}",
    summary="An operation's state and progress; its response or error once done. "
    "?wait=30s holds the answer until it is done, or that long.",
)
async def get_operation(
    op_id: str, request: Request, gateway: GatewayDep, wait: str | None = None
) -> JSONResponse:
    jobs = _jobs(request)
    caller = _caller(request)
    deadline = time.monotonic() + _wait_s(wait, gateway.settings)
    with _store_answers():
        while True:
            with jobs.waiters.watch(op_id) as woken:
                job = await _own_job(jobs.store, op_id, caller)
                left = deadline - time.monotonic()
                if job["state"] in ENDED or left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken, min(left, _RECHECK_S))
        result = await jobs.store.result(op_id) if job["state"] == "succeeded" else None
    return JSONResponse(operation(job, result))


def _page_token(job_id: str) -> str:
    return base64.urlsafe_b64encode(job_id.encode()).decode().rstrip("=")


def _after(token: str | None) -> str | None:
    if not token:
        return None
    try:
        job_id = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:
        job_id = ""
    if not _ID.match(job_id):
        raise InvalidInput("page_token is not one this API gave (use next_page_token)")
    return job_id


@router.get(
    "/operations",
    summary="The caller's operations, newest first (metadata and error; GET one for its response).",
)
async def list_operations(
    request: Request, page_size: int = 50, page_token: str | None = None
) -> JSONResponse:
    jobs = _jobs(request)
    if not 1 <= page_size <= 100:
        raise InvalidInput("page_size must be between 1 and 100")
    after = _after(page_token)
    with _store_answers():
        ids = await jobs.store.listing(_caller(request), after, page_size + 1)
        found = [await jobs.store.job(job_id) for job_id in ids[:page_size]]
    ops = [operation(job) for job in found if job is not None]
    body: dict[str, Any] = {"operations": ops}
    if len(ids) > page_size:
        body["next_page_token"] = _page_token(ids[page_size - 1])
    return JSONResponse(body)


@router.post(
    "/operations/{op_id}:cancel",
    summary="Cancel an operation: a queued job never runs, a running one stops.",
)
async def cancel_operation(op_id: str, request: Request) -> JSONResponse:
    jobs = _jobs(request)
    caller = _caller(request)
    with _store_answers():
        await _own_job(jobs.store, op_id, caller)
        await jobs.store.cancel(op_id, caller)
        job = await _own_job(jobs.store, op_id, caller)
        result = await jobs.store.result(op_id) if job["state"] == "succeeded" else None
    return JSONResponse(operation(job, result))


@router.delete(
    "/operations/{op_id}",
    summary="Forget an operation and its result (a job not done is cancelled first).",
    status_code=204,
)
async def delete_operation(op_id: str, request: Request) -> Response:
    jobs = _jobs(request)
    caller = _caller(request)
    with _store_answers():
        await _own_job(jobs.store, op_id, caller)
        if not await jobs.store.delete(op_id, caller):
            raise NotFound(f"no operation {op_id!r}")
    return Response(status_code=204)
