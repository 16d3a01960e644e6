"""Constant arrival rate (open loop): ``--arrival-rate`` requests per second, whatever happens.

Closed-loop users wait for an answer before sending again, so a server that slows down also
slows the load down and hides its tail (coordinated omission). Here arrivals follow a clock: a
Poisson process (or evenly spaced, ``--arrival-process uniform``) of ``--arrival-rate``
requests/s in all, split over ``--arrival-users`` schedulers (give each Locust worker at least
one), each request sent in its own greenlet. The route of each arrival is drawn among
``--routes`` with ``--weights`` (default: the users' weights, ``routes.WEIGHTS``).

A scheduler keeps at most ``--max-in-flight`` requests open; an arrival past that is not sent
and is counted as a failure ("dropped: ... in flight"), so an overloaded server shows up as
errors rather than as a load generator that quietly slowed down.
"""

from __future__ import annotations

import logging
import random
import time
from itertools import count
from typing import Any

from gevent.event import Event
from gevent.pool import Group
from locust import FastHttpUser, LoadTestShape, User, constant, events, tag, task
from locust.exception import StopUser
from locust.runners import MasterRunner

from loadtests import routes
from loadtests.shapes import common, options_of

log = logging.getLogger("docsum.loadtest")
_ids = count()
_max_lag_s = 0.0
#: Set when the shape (on the master, or in a local run) says the arrivals are over: the
#: schedulers stop sending and drain. A message, because workers do not know the run time.
_STOP = "docsum_arrivals_stop"
_stopped = Event()


@events.init.add_listener
def _listen(environment: Any, **_: Any) -> None:
    if environment.runner is not None and not isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(_STOP, lambda *_, **__: _stopped.set())


@events.test_start.add_listener
def _reset(**_: Any) -> None:
    _stopped.clear()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--arrival-rate", type=float, default=1.0, help="requests/s in all")
    parser.add_argument(
        "--arrival-users", type=int, default=1, help="schedulers sharing the rate (≥ workers)"
    )
    parser.add_argument(
        "--arrival-process", choices=["poisson", "uniform"], default="poisson", help="spacing"
    )
    parser.add_argument(
        "--max-in-flight", type=int, default=64, help="open requests per scheduler before drops"
    )
    parser.add_argument(
        "--drain-s", type=float, default=30.0, help="wait for open requests after the run"
    )


@events.quitting.add_listener
def _report_lag(environment: Any, **_: Any) -> None:
    if _max_lag_s > 0.5:
        log.warning(
            "open-loop scheduler fell %.1f s behind its clock: the load generator itself was "
            "short of CPU; figures above that rate are not trustworthy",
            _max_lag_s,
        )


class OpenLoopUser(FastHttpUser):
    """A scheduler: sends arrivals on a clock for ``--run-time``, each in its own greenlet.

    At the end it stops sending, waits up to ``--drain-s`` for the requests still open (their
    latency is the tail: dropping them would flatter the figures), counts those that did not
    finish as failures, and stops.
    """

    connection_timeout = 10.0
    network_timeout = 180.0
    wait_time = constant(0)

    def __init__(self, environment: Any) -> None:
        options = environment.parsed_options
        # The connection pool must hold every request this scheduler may have open.
        self.concurrency = options.max_in_flight
        super().__init__(environment)
        self.ctx = routes.Context.from_options(options)
        self.rng = random.Random(options.payload_seed * 100_003 + 50_000 + next(_ids))
        chosen = routes.chosen_routes(options)
        self.routes = chosen
        self.weights = routes.weights(options, chosen)
        self.rate = options.arrival_rate / max(1, options.arrival_users)
        self.poisson = options.arrival_process == "poisson"
        self.max_in_flight = options.max_in_flight
        self.drain_s = options.drain_s
        self.inflight = Group()
        self.open = dict.fromkeys(chosen, 0)

    def on_start(self) -> None:
        routes.stop_without_key(self.ctx)

    def on_stop(self) -> None:
        self.inflight.kill(block=False)

    def _one(self, route: str) -> None:
        self.open[route] += 1
        try:
            routes.CALLS[route](self.client, self.ctx, self.rng)
        finally:
            self.open[route] -= 1

    def _fail(self, route: str, why: str, n: int = 1) -> None:
        for _ in range(n):
            self.environment.stats.log_error(*routes.stats_key(route, self.ctx.target), why)

    # Every route's tag, so that --tags keeps the scheduler (it sends the chosen routes only).
    @tag(*routes.CALLS)
    @task
    def arrivals(self) -> None:
        global _max_lag_s
        due = time.monotonic()
        while not _stopped.is_set():
            due += self.rng.expovariate(self.rate) if self.poisson else 1.0 / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                if _stopped.wait(delay):
                    break
            else:
                _max_lag_s = max(_max_lag_s, -delay)
            route = self.rng.choices(self.routes, self.weights)[0]
            if len(self.inflight) >= self.max_in_flight:
                self._fail(route, f"dropped: {self.max_in_flight} requests already in flight")
                continue
            self.inflight.spawn(self._one, route)
        self.inflight.join(timeout=self.drain_s)
        for route, n in self.open.items():
            self._fail(route, f"unfinished {self.drain_s:g} s after the end of the run", n)
        self.inflight.kill(block=False)
        raise StopUser()


class ConstantArrivalRate(LoadTestShape):
    """``--arrival-users`` schedulers at ``--arrival-rate`` in all, for ``--run-time``, then
    until their open requests are done (at most ``--drain-s`` more)."""

    use_common_options = True
    _stop_sent = False

    def tick(self) -> tuple[int, float, list[type[User]] | None] | None:
        options = options_of(self)
        run_time = common(options)[2]
        t = self.get_run_time()
        if t >= run_time:
            if not self._stop_sent:
                assert self.runner is not None
                self.runner.send_message(_STOP)
                self._stop_sent = True
            if self.get_current_user_count() == 0 or t >= run_time + options.drain_s + 5:
                return None
        n = max(1, options.arrival_users)
        return n, float(n), [OpenLoopUser]
