"""Spike: a base load, a sudden burst to ``--users``, then the base again.

The base is ``--spike-base`` users (default a fifth of ``--users``); the burst starts at 40 %
of the run and lasts ``--spike-s`` seconds (default a fifth of the run). What matters is the
tail during the burst (queues fill, 503 + Retry-After instead of unbounded latency) and how fast
latency comes back after it.
"""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape, events

from loadtests.shapes import common, options_of


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--spike-base", type=int, default=0, help="users outside the burst")
    parser.add_argument("--spike-s", type=float, default=0, help="burst length (0: run time/5)")


class Spike(LoadTestShape):
    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        options = options_of(self)
        users, _, run_time = common(options)
        t = self.get_run_time()
        if t >= run_time:
            return None
        base = options.spike_base or max(1, users // 5)
        start = 0.4 * run_time
        length = options.spike_s or run_time / 5
        # All burst users at once: a spike that ramps is a ramp.
        return (users if start <= t < start + length else base), float(users)
