"""Ramp: from 0 to ``--users`` users over ``--ramp-s`` seconds (default half the run), then hold.

Finds where latency starts to climb as concurrency grows.
"""

from __future__ import annotations

import math
from typing import Any

from locust import LoadTestShape, events

from loadtests.shapes import common, options_of


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--ramp-s", type=float, default=0, help="ramp length (0: half the run)")


class Ramp(LoadTestShape):
    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        options = options_of(self)
        users, _, run_time = common(options)
        t = self.get_run_time()
        if t >= run_time:
            return None
        ramp_s = options.ramp_s or run_time / 2
        return max(1, math.ceil(users * min(1.0, t / ramp_s))), float(users)
