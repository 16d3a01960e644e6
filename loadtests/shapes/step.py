"""Step: ``--step-users`` more users every ``--step-s`` seconds, up to ``--users``, then hold.

Each plateau is long enough to read a steady latency, so the step where p99 breaks the SLO
shows on the charts (Locust's and Grafana's).
"""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape, events

from loadtests.shapes import common, options_of


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--step-users", type=int, default=0, help="users added per step (0: users/5)"
    )
    parser.add_argument("--step-s", type=float, default=0, help="step length (0: run time/5)")


class Step(LoadTestShape):
    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        options = options_of(self)
        users, spawn_rate, run_time = common(options)
        t = self.get_run_time()
        if t >= run_time:
            return None
        step_users = options.step_users or max(1, users // 5)
        step_s = options.step_s or run_time / 5
        return min(users, step_users * (int(t // step_s) + 1)), spawn_rate
