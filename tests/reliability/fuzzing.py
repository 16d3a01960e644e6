"""Fuzz a live docsum API from its own OpenAPI document, with schemathesis and Hypothesis.

For every operation, cases are generated in both of schemathesis' modes: *positive* (bodies
the schema allows) and *negative* (bodies it forbids). Each case is sent over real HTTP and
its answer checked:

- no 5xx, and an answer within ``timeout_s`` (no hang, no dropped connection);
- an error (4xx) has docsum's shape ``{"error": {"code", "message", "request_id"}}`` with a
  non-empty message;
- a 200 matches the response schema the API publishes;
- a negative case is refused (4xx): a schema that forbids what the service takes is a lie.

A multipart ``file`` field is mostly filled with real images (PNG, JPEG, TIFF, BMP, WebP of
random size and mode), flipped or cut at random places, not only random bytes: random bytes
never get past the format check, so they would leave the decoders untested.

Nothing raises while cases run: every failure is recorded with a curl line to replay it, so
one run reports all of them. Used by ``tests/reliability/test_fuzz.py`` (short) and
``bench/fuzz.py`` (``make fuzz``, at least 1,000 cases per API).
"""

from __future__ import annotations

import io
import json
import math
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, response_schema_conformance
from schemathesis.core.result import Ok

#: Image formats and the Pillow modes each can store.
_FORMATS: dict[str, tuple[str, ...]] = {
    "PNG": ("1", "L", "P", "RGB", "RGBA", "I;16"),
    "JPEG": ("L", "RGB", "CMYK"),
    "TIFF": ("1", "L", "RGB", "RGBA", "I;16"),
    "BMP": ("1", "L", "P", "RGB"),
    "WEBP": ("RGB", "RGBA"),
}


@st.composite
def upload_bytes(draw: st.DrawFn) -> bytes:
    """A file for an image upload: a real image, a damaged one, or random bytes."""
    kind = draw(st.sampled_from(["image", "image", "damaged", "damaged", "random"]))
    if kind == "random":
        return draw(st.binary(max_size=2048))
    fmt = draw(st.sampled_from(sorted(_FORMATS)))
    mode = draw(st.sampled_from(_FORMATS[fmt]))
    width = draw(st.integers(1, 600))
    height = draw(st.integers(1, 300))
    img = Image.new("L", (width, height), 255)
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    ink = ImageDraw.Draw(img)
    for _ in range(rng.randint(0, 6)):  # a few "words": dark boxes and text
        x, y = rng.randrange(width), rng.randrange(height)
        ink.text((x, y), "docsum 42", fill=0)
        ink.rectangle(
            (x, y, x + rng.randint(1, 40), y + rng.randint(1, 8)), fill=rng.randint(0, 99)
        )
    out = io.BytesIO()
    img.convert(mode).save(out, format=fmt)
    data = bytearray(out.getvalue())
    if kind == "damaged":
        if draw(st.booleans()):
            cut = draw(st.integers(0, len(data)))
            data = data[:cut]
        for _ in range(draw(st.integers(1, 8))):
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


@dataclass
class Failure:
    """One case whose answer broke a rule."""

    operation: str
    mode: str
    rule: str
    status: int | None
    detail: str
    curl: str


@dataclass
class FuzzReport:
    """What a run sent and what came back."""

    api: str
    seed: int
    cases: int = 0
    #: "METHOD /path" → status → count.
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    #: Cases that broke a rule (``failures`` lists each distinct one once).
    failed_cases: int = 0
    elapsed_s: float = 0.0
    slowest_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "seed": self.seed,
            "cases": self.cases,
            "statuses": {op: dict(sorted(c.items())) for op, c in self.statuses.items()},
            "server_errors": sum(
                n for c in self.statuses.values() for s, n in c.items() if s >= 500
            ),
            "failed_cases": self.failed_cases,
            "failures": [asdict(f) for f in self.failures],
            "elapsed_s": round(self.elapsed_s, 2),
            "slowest_s": round(self.slowest_s, 3),
        }


def _error_shape_problem(r: schemathesis.Response) -> str | None:
    """Why an error answer is not docsum's error body, or None when it is."""
    try:
        err = r.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"the body is not {{'error': ...}}: {r.text[:200]!r}"
    if not isinstance(err, dict) or not all(k in err for k in ("code", "message", "request_id")):
        return f"the error lacks code, message or request_id: {err!r}"[:300]
    if not str(err["message"]).strip():
        return "the error message is empty"
    return None


def _curl(case: schemathesis.Case, base_url: str) -> str:
    try:
        return str(case.as_curl_command(base_url=base_url))[:2000]
    except Exception:  # a body curl cannot express (binary in a form): describe it
        body = (
            case.body
            if not isinstance(case.body, dict)
            else {
                k: (f"<{len(v)} bytes>" if isinstance(v, bytes) else v)
                for k, v in case.body.items()
            }
        )
        return f"{case.method} {base_url}{case.formatted_path} body={body!r}"[:2000]


@dataclass
class _Operation:
    """One operation under test and where its answers are tallied."""

    label: str
    has_file: bool
    statuses: Counter[int]


class _Sender:
    """Sends cases and records what came back in ``report``."""

    def __init__(
        self,
        base_url: str,
        report: FuzzReport,
        headers: dict[str, str] | None,
        timeout_s: float,
        max_failures: int,
    ) -> None:
        self.base_url = base_url
        self.report = report
        self.headers = headers
        self.timeout_s = timeout_s
        self.max_failures = max_failures
        self.session = requests.Session()

    def _fail(
        self, op: _Operation, mode: GenerationMode, rule: str, status: int | None, detail: str,
        case: schemathesis.Case,
    ) -> None:  # fmt: skip
        self.report.failed_cases += 1
        failure = Failure(op.label, mode.value, rule, status, detail, _curl(case, self.base_url))
        # Hypothesis sends some cases more than once: each failure is listed once.
        seen = any(f.rule == rule and f.curl == failure.curl for f in self.report.failures)
        if not seen and len(self.report.failures) < self.max_failures:
            self.report.failures.append(failure)

    def send(
        self, op: _Operation, mode: GenerationMode, case: schemathesis.Case, upload: bytes
    ) -> None:
        """Send ``case`` (its file replaced by ``upload`` in positive mode) and judge it."""
        if (
            op.has_file
            and mode is GenerationMode.POSITIVE
            and isinstance(case.body, dict)
            and isinstance(case.body.get("file"), str)
        ):
            cast(dict[str, Any], case.body)["file"] = upload
        self.report.cases += 1
        t0 = time.perf_counter()
        try:
            r = case.call(
                base_url=self.base_url,
                session=self.session,
                headers=self.headers,
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            detail = f"{type(exc).__name__}: {exc}"[:500]
            self._fail(op, mode, "no answer (hang or dropped connection)", None, detail, case)
            return
        self.report.slowest_s = max(self.report.slowest_s, time.perf_counter() - t0)
        op.statuses[r.status_code] += 1
        if r.status_code >= 500:
            self._fail(op, mode, "server error (5xx)", r.status_code, r.text[:500], case)
        elif r.status_code >= 400:
            shape = _error_shape_problem(r)
            if shape:
                self._fail(op, mode, "error body not in docsum's shape", r.status_code, shape, case)
        elif mode is GenerationMode.NEGATIVE:
            # schemathesis' own judgement: it knows which mutations survive serialization.
            problem = _check(case, r, negative_data_rejection)
            if problem:
                rule = "schema-invalid request accepted"
                self._fail(op, mode, rule, r.status_code, problem, case)
        elif r.status_code == 200:
            problem = _check(case, r, response_schema_conformance)
            if problem:
                rule = "200 body does not match the response schema"
                self._fail(op, mode, rule, r.status_code, problem, case)


def _check(case: schemathesis.Case, r: schemathesis.Response, check: Any) -> str | None:
    """The failure message of one schemathesis check on ``r``, or None when it passes."""
    try:
        case.validate_response(r, checks=[check])
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # schemathesis raises failure groups
        return str(exc)[:800]
    return None


def fuzz_api(
    base_url: str,
    cases_per_api: int,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 30.0,
    seed_value: int | None = None,
    max_failures: int = 50,
) -> FuzzReport:
    """Send at least ``cases_per_api`` generated cases to the API at ``base_url``.

    The cases are split evenly over its operations and the two generation modes. ``headers``
    go with every request (an API key). A hang is an answer slower than ``timeout_s``.
    """
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            raise RuntimeError(f"{base_url}: an operation cannot be tested: {result.err()}")
        operations.append(result.ok())
    chosen_seed = seed_value if seed_value is not None else random.getrandbits(32)
    report = FuzzReport(api=base_url, seed=chosen_seed)
    sender = _Sender(base_url, report, headers, timeout_s, max_failures)
    started = time.perf_counter()
    per_run = math.ceil(cases_per_api / max(1, 2 * len(operations)))
    try:
        for api_op in operations:
            label = f"{api_op.method.upper()} {api_op.path}"
            body = json.dumps(api_op.definition.raw.get("requestBody", {}))
            op = _Operation(label, "multipart/form-data" in body, Counter())
            report.statuses[label] = op.statuses
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _run_mode(sender, api_op, op, mode, per_run, chosen_seed)
    finally:
        sender.session.close()
    report.elapsed_s = time.perf_counter() - started
    return report


def _run_mode(
    sender: _Sender,
    api_op: schemathesis.APIOperation,
    op: _Operation,
    mode: GenerationMode,
    cases: int,
    seed_value: int,
) -> None:
    """Send ``cases`` cases of one operation in one mode."""
    first = sender.report.cases
    # Hypothesis stops early once it has seen every distinct case of a small space; rounds
    # with new seeds top the count up.
    for round_ in range(20):
        left = cases - (sender.report.cases - first)
        if left <= 0:
            break

        @settings(
            max_examples=left,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(seed_value + round_)
        @given(case=api_op.as_strategy(mode), upload=upload_bytes())
        def run(case: schemathesis.Case, upload: bytes) -> None:
            sender.send(op, mode, case, upload)

        before = sender.report.cases
        run()
        if sender.report.cases == before:
            break
