"""The async document route as a client uses it: submit, long-poll the operation, check the result.

One job gives Locust three kinds of statistics entries:

- ``POST /api/v1/documents:summarizeAsync``: the submit (a 202; a 429, the pending-jobs or
  stored-bytes limit, is a failure named after the limit, so it is counted, not hidden).
- ``GET /api/v1/operations/{op_id}``: each long poll (``?wait=``: the gateway answers when the
  job ends or the wait is up, so there is no busy loop and the end is seen at once).
- ``JOB documents:summarizeAsync end-to-end``: from sending the submit to holding a checked
  result; what ``slo.toml`` judges. Anything short of a result counts as a failure with its
  reason: a refused submit, a job that failed or was cancelled (the operation's error), an
  operation gone (404: expired or deleted), a response without a summary or not shaped like
  the synchronous route's, no end within ``--job-timeout-s`` (the job is then cancelled).

Not a Locust file: ``routes.py`` calls :func:`run_job` for the ``summarize_async`` route.
"""

from __future__ import annotations

import math
import time
from typing import Any

from locust.contrib.fasthttp import FastHttpSession, ResponseContextManager
from locust.exception import CatchResponseError

from loadtests.payloads import Upload

SUBMIT = "/api/v1/documents:summarizeAsync"
#: The gateway's route templates: the statistics entries carry the same names as the
#: ``route`` label of its Prometheus metrics.
POLL = "/api/v1/operations/{op_id}"
CANCEL = "/api/v1/operations/{op_id}:cancel"
#: The end-to-end entry of each job (a method of its own: it is no single HTTP request).
E2E_METHOD = "JOB"
E2E_NAME = "documents:summarizeAsync end-to-end"
#: The keys of the synchronous route's body: a succeeded operation's ``response`` has them all.
RESPONSE_KEYS = ("text", "summary", "pages", "timings_ms", "backends", "errors")
#: Failure messages are grouped by Locust: long ones are cut.
_MAX_MESSAGE = 160


class JobFailed(Exception):
    """The job gave no checked result; the message says why (short: Locust groups them)."""


def answer_error(r: ResponseContextManager) -> str:
    """``HTTP <status> <error code>`` of an answer that is not the one expected (no request
    id: failures must group into a few lines), with the limit a 429 names."""
    code = ""
    try:
        error = r.json().get("error", {})
        code = str(error.get("code", ""))
        if error.get("limit"):
            code += f" ({error['limit']})"
    except Exception:  # not JSON: a proxy page, a reset connection
        exc = getattr(r, "error", None)
        code = type(exc).__name__ if exc else ""
    return f"HTTP {r.status_code} {code}".strip()


def _json(r: ResponseContextManager, status: int, what: str) -> dict[str, Any]:
    """The JSON body of ``r`` when it is a ``status`` answer; else ``r`` is marked failed
    and :class:`JobFailed` says why."""
    if r.status_code != status:
        why = answer_error(r)
    else:
        try:
            body = r.json()
        except Exception:
            body = None
        if isinstance(body, dict):
            r.success()
            return body
        why = f"{status} with a body that is not a JSON object"
    r.failure(why)
    raise JobFailed(f"{what}: {why}")


def _submit(client: FastHttpSession, headers: dict[str, str], upload: Upload) -> dict[str, Any]:
    with client.post(
        SUBMIT,
        data=upload.body,  # type: ignore[arg-type]  # bytes are sent as they are
        headers={**headers, "Content-Type": upload.content_type},
        name=SUBMIT,
        catch_response=True,
    ) as r:
        return _json(r, 202, "submit")


def _poll(
    client: FastHttpSession, headers: dict[str, str], op_id: str, wait_s: float
) -> tuple[dict[str, Any], int]:
    """The operation after a long poll of up to ``wait_s`` seconds; its size in bytes."""
    with client.get(
        f"/api/v1/operations/{op_id}?wait={wait_s:g}s",
        headers=headers,
        name=POLL,
        catch_response=True,
    ) as r:
        op = _json(r, 200, "poll")
        return op, len(r.content or b"")


def _cancel(client: FastHttpSession, headers: dict[str, str], op_id: str) -> None:
    """Cancel a job given up on, so that it does not keep a worker and a pending slot."""
    with client.post(
        f"/api/v1/operations/{op_id}:cancel", headers=headers, name=CANCEL, catch_response=True
    ) as r:
        if r.status_code != 200:
            r.failure(answer_error(r))


def check_result(op: dict[str, Any]) -> None:
    """Raise :class:`JobFailed` unless ``op`` is done with the synchronous route's body and a
    non-empty summary."""
    state = op.get("metadata", {}).get("state", "?")
    error = op.get("error")
    if error:
        reason = f" ({error['reason']})" if error.get("reason") else ""
        message = str(error.get("message", ""))[:_MAX_MESSAGE]
        raise JobFailed(f"{state}{reason}: {error.get('code', '?')}: {message}")
    body = op.get("response")
    if not isinstance(body, dict):
        raise JobFailed(f"done ({state}) without a response or an error")
    missing = [k for k in RESPONSE_KEYS if k not in body]
    if missing:
        raise JobFailed(f"response without {', '.join(missing)}")
    summary = body["summary"]
    if not isinstance(summary, str) or not summary.strip():
        codes = ", ".join(sorted({str(e.get("code")) for e in body["errors"] or []}))
        raise JobFailed(f"response without a summary ({codes or 'no error given'})")


def run_job(
    client: FastHttpSession,
    headers: dict[str, str],
    upload: Upload,
    wait_s: float,
    timeout_s: float,
) -> None:
    """Submit ``upload``, long-poll ``wait_s`` seconds at a time until the job ends (at most
    ``timeout_s`` seconds), check its result, and report the job end-to-end."""
    start = time.perf_counter()
    size = 0
    failure: Exception | None = None
    try:
        op = _submit(client, headers, upload)
        op_id = str(op.get("name", "")).removeprefix("operations/")
        if not op_id:
            raise JobFailed("submit: 202 without the operation's name")
        deadline = start + timeout_s
        while not op.get("done"):
            left = deadline - time.perf_counter()
            if left <= 0:
                _cancel(client, headers, op_id)
                state = op.get("metadata", {}).get("state", "?")
                raise JobFailed(f"not done within {timeout_s:g} s (still {state}); cancelled")
            op, size = _poll(client, headers, op_id, min(wait_s, math.ceil(left)))
        check_result(op)
    except JobFailed as exc:
        failure = CatchResponseError(str(exc))
    client.request_event.fire(
        request_type=E2E_METHOD,
        name=E2E_NAME,
        response_time=(time.perf_counter() - start) * 1000,
        response_length=size,
        response=None,
        context={},
        exception=failure,
    )
