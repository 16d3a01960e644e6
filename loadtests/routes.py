"""What a docsum load-test user sends, and the options that steer it.

Imported by the Locust files (``locustfile.py`` and ``shapes/*.py``), never run by itself. It
registers the docsum command-line options once, builds the payload pool once per process, and
defines one call per route: OCR, summarize, the document pipeline, and the same pipeline as an
async job (``loadtests/jobs.py``). A call names its statistics entry after the route template,
the same string as the ``route`` label in Prometheus and the key in ``slo.toml`` (a job's
end-to-end entry is named after the job: see ``jobs.py``).

Targets:
- ``gateway`` (default): the public API at ``--host`` with an API key (``--api-key`` or
  ``DOCSUM_API_KEY``, or a file: ``--api-key-file``, ``DOCSUM_API_KEY_FILE``):
  ``/api/v1/summarize``, ``/api/v1/ocr``, ``/api/v1/documents:summarize``, and
  ``summarize_async``: ``/api/v1/documents:summarizeAsync`` then ``/api/v1/operations/{op_id}``
  (needs Redis and a worker behind the gateway; not in the default ``--routes``).
- ``direct``: the services themselves, ``--summarizer-host`` ``/v1/summarize`` and
  ``--ocr-host`` ``/v1/ocr`` (no pipeline: that is the gateway's).
"""

from __future__ import annotations

import json
import logging
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from locust import events
from locust.contrib.fasthttp import FastHttpSession, ResponseContextManager
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from loadtests import jobs
from loadtests.payloads import PayloadPool, Upload, make_pool

log = logging.getLogger("docsum.loadtest")

#: Each route's share of the closed-loop users and of open-loop arrivals. Texts to summarize
#: are the common case, single pages for OCR next, whole documents through the pipeline (the
#: heaviest) least; async jobs as many as synchronous documents.
WEIGHTS = {"summarize": 6, "ocr": 3, "document": 1, "summarize_async": 1}
#: Routes the gateway alone serves (not --target direct).
GATEWAY_ONLY = ("document", "summarize_async")


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--target",
        choices=["gateway", "direct"],
        default="gateway",
        env_var="DOCSUM_LOADTEST_TARGET",
        help="gateway: the public API at --host; direct: the services at --ocr-host and "
        "--summarizer-host",
    )
    parser.add_argument(
        "--api-key",
        default="",
        env_var="DOCSUM_API_KEY",
        is_secret=True,
        help="the gateway API key (sent as X-API-Key)",
    )
    parser.add_argument(
        "--api-key-file",
        default="",
        env_var="DOCSUM_API_KEY_FILE",
        help="read the API key from this file instead (a mounted Kubernetes Secret)",
    )
    parser.add_argument("--ocr-host", default="http://127.0.0.1:8081", help="direct target")
    parser.add_argument("--summarizer-host", default="http://127.0.0.1:8082", help="direct target")
    parser.add_argument(
        "--routes",
        default="summarize,ocr,document",
        help="comma-separated routes the users call: summarize, ocr, document, summarize_async",
    )
    parser.add_argument(
        "--weights",
        default="",
        help="open loop: each route's share of arrivals, e.g. summarize=2,ocr=1,document=1 "
        "(default: the users' weights 6:3:1)",
    )
    parser.add_argument(
        "--backend-version",
        default="",
        help="pin a backend version through the gateway (X-Docsum-Backend), e.g. canary",
    )
    parser.add_argument("--payload-seed", type=int, default=7, help="seed of the payload pool")
    parser.add_argument(
        "--page-dpi", type=int, default=300, help="resolution of the rendered A4 pages"
    )
    parser.add_argument(
        "--max-sentences", type=int, default=3, help="summary length asked for, in sentences"
    )
    parser.add_argument(
        "--job-wait-s",
        type=float,
        default=20.0,
        help="summarize_async: seconds each long poll of an operation may wait (?wait=)",
    )
    parser.add_argument(
        "--job-timeout-s",
        type=float,
        default=300.0,
        help="summarize_async: seconds from submit after which a job is a failure (cancelled)",
    )
    parser.add_argument(
        "--summary-json",
        default="",
        help="write the final statistics (response-time histograms, errors) to this file",
    )


@events.quitting.add_listener
def _write_summary(environment: Any, **_: Any) -> None:
    """The final figures, for loadtests/report.py: taken after every user stopped.

    (Locust's CSV files are rewritten every second and may miss the last requests; its
    --json-file resets the statistics it writes.)
    """
    path = environment.parsed_options and environment.parsed_options.summary_json
    if not path or isinstance(environment.runner, WorkerRunner):
        return
    stats = environment.runner.stats
    entries = [
        {
            "method": e.method,
            "name": e.name,
            "requests": e.num_requests,
            "failures": e.num_failures,
            "response_times_ms": {str(k): v for k, v in sorted(e.response_times.items())},
            "start_time": e.start_time,
            "last_request_time": e.last_request_timestamp,
        }
        for e in stats.entries.values()
    ]
    errors = [
        {"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
        for e in stats.errors.values()
    ]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"entries": entries, "errors": errors}, indent=1) + "\n")


@cache
def pool(seed: int, dpi: int) -> PayloadPool:
    """The payloads of this process, made once (about a second of CPU)."""
    return make_pool(seed=seed, dpi=dpi)


#: A worker's own key (its DOCSUM_API_KEY or _FILE): the master's options replace a worker's
#: when a run starts, and a master (k8s/components/loadgen) may hold no key.
_worker_key = ""

NO_KEY = (
    "no API key for the gateway: set DOCSUM_API_KEY (make run keeps one in .runs/dev-api-key), "
    "or give --api-key or --api-key-file"
)


def _given_key(options: Any) -> str:
    """``--api-key-file``'s content, else ``--api-key``."""
    if options.api_key_file:
        return Path(options.api_key_file).read_text(encoding="utf-8").strip()
    return str(options.api_key)


def api_key(options: Any) -> str:
    """The gateway API key: the options' (``--api-key-file``, ``--api-key``), else, on a
    worker, its own."""
    return _given_key(options) or _worker_key


def _stop(message: str) -> NoReturn:
    """Stop Locust before any user starts, with one line saying why."""
    log.error(message)
    sys.exit(1)


@events.init.add_listener
def _check_setup(environment: Any, **_: Any) -> None:
    """Refuse at start what would fail every request; spawn only the chosen routes' users.

    A missing API key would make a run of 100 % 401s: a local run stops here; a master, whose
    workers may hold the key, warns, and a worker's users stop at once without one (see
    :meth:`Context.from_options`). ``--routes``, ``--tags`` and ``--exclude-tags`` choose the
    routes; users of the other routes are not spawned at all. A worker takes these options
    from the master when the run starts, so it checks nothing here.
    """
    global _worker_key
    options = environment.parsed_options
    if options is None:
        return
    if isinstance(environment.runner, WorkerRunner):
        try:
            _worker_key = _given_key(options)
        except OSError as exc:
            _stop(f"--api-key-file {options.api_key_file}: {exc.strerror}")
        return
    try:
        chosen = chosen_routes(options)
    except ValueError as exc:
        _stop(str(exc))
    if options.target == "gateway":
        try:
            key = api_key(options)
        except OSError as exc:
            _stop(f"--api-key-file {options.api_key_file}: {exc.strerror}")
        if not key and isinstance(environment.runner, MasterRunner):
            log.warning("no API key on the master: each worker needs its own (DOCSUM_API_KEY)")
        elif not key:
            _stop(NO_KEY)
    users = environment.user_classes
    users[:] = [u for u in users if getattr(u, "route", "") in ("", *chosen)]
    environment._filter_tasks_by_tags()  # what Locust does at start, done here to see the result
    users[:] = [u for u in users if u.tasks]
    if not users and environment.available_user_classes:
        _stop(f"no user left to spawn for the routes {chosen}")


@events.init.add_listener
def _make_payloads(environment: Any, **_: Any) -> None:
    """Make the payloads before the test starts, not while the first users spawn."""
    options = environment.parsed_options
    if options is not None and not isinstance(environment.runner, MasterRunner):
        pool(options.payload_seed, options.page_dpi)


@dataclass(frozen=True)
class Context:
    """What a call needs from the parsed options."""

    target: str
    headers: dict[str, str]
    ocr_host: str
    summarizer_host: str
    max_sentences: int
    payloads: PayloadPool
    job_wait_s: float = 20.0
    job_timeout_s: float = 300.0

    @classmethod
    def from_options(cls, options: Any) -> Context:
        headers = {}
        if options.target == "gateway":
            key = api_key(options)
            if key:
                headers["X-API-Key"] = key
            if options.backend_version:
                headers["X-Docsum-Backend"] = options.backend_version
        return cls(
            target=options.target,
            headers=headers,
            ocr_host=options.ocr_host.rstrip("/"),
            summarizer_host=options.summarizer_host.rstrip("/"),
            max_sentences=options.max_sentences,
            payloads=pool(options.payload_seed, options.page_dpi),
            job_wait_s=options.job_wait_s,
            job_timeout_s=options.job_timeout_s,
        )


_warned_no_key = False


def stop_without_key(ctx: Context) -> None:
    """In a user's ``on_start``: stop it when it would send to the gateway without a key (a
    worker with no key of its own under a master with none), saying so once."""
    global _warned_no_key
    if ctx.target == "gateway" and "X-API-Key" not in ctx.headers:
        if not _warned_no_key:
            _warned_no_key = True
            log.error(NO_KEY)
        raise StopUser()


def _check(r: ResponseContextManager, field: str) -> None:
    """Mark the request failed unless it is a 200 whose JSON has ``field``.

    The failure message is the status and the error code only (no request id), so Locust
    groups failures into a few lines.
    """
    if r.status_code != 200:
        r.failure(jobs.answer_error(r))
        return
    try:
        body = r.json()
    except Exception:
        r.failure("200 with a body that is not JSON")
        return
    if field not in body:
        r.failure(f"200 without '{field}'")


def summarize(client: FastHttpSession, ctx: Context, rng: random.Random) -> None:
    text = rng.choice(ctx.payloads.texts)
    if ctx.target == "gateway":
        url = name = "/api/v1/summarize"
    else:
        url, name = f"{ctx.summarizer_host}/v1/summarize", "/v1/summarize"
    with client.post(
        url,
        json={"text": text, "max_sentences": ctx.max_sentences},
        headers=ctx.headers,
        name=name,
        catch_response=True,
    ) as r:
        _check(r, "summary")


def ocr(client: FastHttpSession, ctx: Context, rng: random.Random) -> None:
    upload = rng.choice(ctx.payloads.ocr_uploads)
    if ctx.target == "gateway":
        url = name = "/api/v1/ocr"
    else:
        url, name = f"{ctx.ocr_host}/v1/ocr", "/v1/ocr"
    with client.post(
        url,
        data=upload.body,  # type: ignore[arg-type]  # bytes are sent as they are
        headers={**ctx.headers, "Content-Type": upload.content_type},
        name=name,
        catch_response=True,
    ) as r:
        _check(r, "pages")


def _document(ctx: Context, rng: random.Random) -> Upload:
    """A document of the pool, drawn with the pool's weights."""
    if ctx.target != "gateway":
        raise ValueError("the document pipeline is a gateway route; use --target gateway")
    uploads, weights = zip(*ctx.payloads.documents, strict=True)
    return rng.choices(uploads, weights)[0]


def document(client: FastHttpSession, ctx: Context, rng: random.Random) -> None:
    upload = _document(ctx, rng)
    name = "/api/v1/documents:summarize"
    with client.post(
        name,
        data=upload.body,  # type: ignore[arg-type]  # bytes are sent as they are
        headers={**ctx.headers, "Content-Type": upload.content_type},
        name=name,
        catch_response=True,
    ) as r:
        _check(r, "text")


def summarize_async(client: FastHttpSession, ctx: Context, rng: random.Random) -> None:
    """The document mix of :func:`document`, as async jobs: submit, wait, check, report."""
    upload = _document(ctx, rng)
    jobs.run_job(client, ctx.headers, upload, ctx.job_wait_s, ctx.job_timeout_s)


CALLS: dict[str, Callable[[FastHttpSession, Context, random.Random], None]] = {
    "summarize": summarize,
    "ocr": ocr,
    "document": document,
    "summarize_async": summarize_async,
}


def weights(options: Any, routes: list[str]) -> list[float]:
    """The arrival weight of each of ``routes``: ``--weights``, else :data:`WEIGHTS`."""
    given: dict[str, float] = {**WEIGHTS}
    for part in filter(None, (p.strip() for p in options.weights.split(","))):
        name, _, value = part.partition("=")
        if name not in CALLS or not value:
            raise ValueError(f"--weights: {part!r} is not <route>=<number> for {sorted(CALLS)}")
        given[name] = float(value)
    return [given[r] for r in routes]


def stats_key(route: str, target: str) -> tuple[str, str]:
    """The method and name of the statistics entry that a call of ``route`` for ``target``
    answers for (the Prometheus ``route`` label; a job's end-to-end entry)."""
    if route == "summarize_async":
        return jobs.E2E_METHOD, jobs.E2E_NAME
    if target == "gateway":
        names = {"document": "/api/v1/documents:summarize"}
        return "POST", names.get(route, f"/api/v1/{route}")
    return "POST", f"/v1/{route}"


def chosen_routes(options: Any) -> list[str]:
    """The routes named by ``--routes`` (checked), less those that ``--tags`` leaves out or
    ``--exclude-tags`` names (a user's task is tagged with its route)."""
    routes = [r.strip() for r in options.routes.split(",") if r.strip()]
    unknown = sorted(set(routes) - set(CALLS))
    if unknown or not routes:
        raise ValueError(f"--routes: unknown {unknown}; choose from {sorted(CALLS)}")
    tags = set(getattr(options, "tags", None) or [])
    excluded = set(getattr(options, "exclude_tags", None) or [])
    routes = [r for r in routes if (not tags or r in tags) and r not in excluded]
    if not routes:
        raise ValueError(f"--tags/--exclude-tags leave none of the routes {sorted(CALLS)}")
    if options.target == "direct":
        routes = [r for r in routes if r not in GATEWAY_ONLY]
    if not routes:
        raise ValueError(
            f"--target direct has no {' or '.join(GATEWAY_ONLY)} route; choose summarize and/or ocr"
        )
    return routes
