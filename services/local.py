"""``docsum up`` / ``make run``: the services as child processes on 127.0.0.1.

Each child is ``docsum serve <name>`` with its own environment prefix; their JSON logs go to
this terminal. Ctrl-C (or SIGTERM) stops them all: SIGTERM first so they drain, SIGKILL for
any still running after the grace period. If one child dies, the others are stopped too.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

log = logging.getLogger(__name__)

GRACE_S = 30.0


def run_stack(services: list[str]) -> int:
    """Start ``services``, wait for Ctrl-C or a child's exit, stop the rest; the exit code."""
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    for name in services:
        children[name] = subprocess.Popen(
            [sys.executable, "-m", "docsum.cli", "serve", name],
            env=os.environ.copy(),
            start_new_session=True,  # our Ctrl-C is delivered by us, as SIGTERM, once
        )
        log.info("started", extra={"child": name, "pid": children[name].pid})
    code = 0
    while not stopping:
        for name, proc in children.items():
            if proc.poll() is not None:
                log.error("service exited; stopping the others", extra={"child": name})
                code = proc.returncode or 1
                stopping = True
        time.sleep(0.2)
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for name, proc in children.items():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("did not stop in time; killing", extra={"child": name})
            proc.kill()
            proc.wait()
    log.info("all services stopped")
    return code
