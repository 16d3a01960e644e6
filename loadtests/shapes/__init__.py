"""Load shapes: one file each, so the Locust command line picks exactly one with ``-f``.

Every shape reads the common options (``--users``, ``--spawn-rate``, ``--run-time``) and
stops the test by itself at ``--run-time`` (60 s when it is not given).
"""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape

DEFAULT_RUN_TIME_S = 60


def options_of(shape: LoadTestShape) -> Any:
    """The parsed command line, docsum's options included."""
    assert shape.runner is not None and shape.runner.environment.parsed_options is not None
    return shape.runner.environment.parsed_options


def common(options: Any) -> tuple[int, float, float]:
    """(users, spawn rate per second, run time in seconds) from the common options."""
    users = max(1, int(options.num_users or 10))
    spawn_rate = float(options.spawn_rate or users)
    run_time = float(options.run_time or DEFAULT_RUN_TIME_S)
    return users, spawn_rate, run_time
