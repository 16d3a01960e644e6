"""docsum's Locust users: summarize, OCR, the document pipeline and async jobs (closed loop).

Run against the local stack (``make run`` in another terminal, or let ``make loadtest`` start
it), from the repository root or from ``loadtests/`` (whose ``locust.conf`` holds the
defaults)::

    export DOCSUM_API_KEY=$(cat .runs/dev-api-key)
    locust -f loadtests/locustfile.py --config loadtests/locust.conf
    cd loadtests && locust --headless --run-time 1m --tags summarize

Each user's task is tagged with its route (``summarize``, ``ocr``, ``document``,
``summarize_async``): ``--routes``, ``--tags`` and ``--exclude-tags`` choose the routes, and the
users of the other routes are not spawned. ``summarize_async`` (the gateway with Redis and a
worker) is chosen by name only: ``--routes summarize_async``.

Add one shape to steer the load over time (each is a file, so exactly one is active)::

    -f loadtests/locustfile.py,loadtests/shapes/ramp.py     # 0 → --users, then hold
    -f loadtests/locustfile.py,loadtests/shapes/step.py     # + --step-users every --step-s
    -f loadtests/locustfile.py,loadtests/shapes/spike.py    # base, a burst to --users, base
    -f loadtests/locustfile.py,loadtests/shapes/arrival.py  # open loop: --arrival-rate req/s

The users here are closed loop: each waits for its answer, thinks, and sends again, like a
person at a screen. A slow server slows them down, so their figures flatter the server; the
arrival shape's open-loop users send on a clock whatever the server does (see
``shapes/arrival.py``), which is what SLO checks use.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

# Locust puts only this file's folder on sys.path; the payloads come from the repository's
# packages (loadtests, tests.support), so the root goes there too, wherever Locust runs from.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from locust import FastHttpUser, between, tag  # noqa: E402
from locust.exception import StopUser  # noqa: E402

from loadtests import routes  # noqa: E402

_ids = count()


def _route_task(route: str) -> Callable[[DocsumUser], None]:
    """The one task of a route's users: its call, tagged with the route (``--tags``)."""

    def call(user: DocsumUser) -> None:
        routes.CALLS[route](user.client, user.ctx, user.rng)

    call.__name__ = call.__qualname__ = route
    return tag(route)(call)


class DocsumUser(FastHttpUser):
    """A user with the payload pool, a seeded random source and the route context.

    A subclass names its ``route``; its weight (``routes.WEIGHTS``) and its one task (the
    route's call, tagged with the route) follow from it."""

    abstract = True
    #: Seconds to connect, and to wait for an answer (a multi-page scan on CPU takes tens).
    connection_timeout = 10.0
    network_timeout = 180.0
    route = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.weight = routes.WEIGHTS[cls.route]
        cls.tasks = [_route_task(cls.route)]

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        self.ctx = routes.Context.from_options(options)
        self.rng = random.Random(options.payload_seed * 100_003 + next(_ids))
        self.enabled = self.route in routes.chosen_routes(options)

    def on_start(self) -> None:
        if not self.enabled:
            raise StopUser()
        routes.stop_without_key(self.ctx)


class SummarizeUser(DocsumUser):
    """Summarizes an article (150-2,000 words, median 600), reads it, sends the next."""

    route = "summarize"
    wait_time = between(1, 3)


class OcrUser(DocsumUser):
    """Reads one scanned A4 page (300 dpi PNG, full or part-filled)."""

    route = "ocr"
    wait_time = between(2, 5)


class DocumentUser(DocsumUser):
    """Uploads a document for a summary: text PDF, scanned PNG, two-page TIFF or scanned PDF."""

    route = "document"
    wait_time = between(3, 8)


class SummarizeAsyncUser(DocsumUser):
    """Submits a document of the same mix as an async job, long-polls it to its end, checks
    the result (``loadtests/jobs.py``). One job in flight per user: the users stay below the
    gateway's pending-jobs limit per key (100), and a 429 past it is counted as a failure."""

    route = "summarize_async"
    wait_time = between(3, 8)
