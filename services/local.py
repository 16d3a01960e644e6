"""``docsum up`` / ``make run``: the services as child processes on 127.0.0.1.

Each child is ``docsum serve <name>`` with its own environment prefix; their JSON logs go to
this terminal. With the worker, a Redis server from ``.tools/redis`` (``make redis``) runs
too, its data in ``.runs/redis``; without one installed, the async routes are off. Ctrl-C
(or SIGTERM) stops them all: SIGTERM first so they drain (Redis last), SIGKILL for any
still running after the grace period. If one child dies, the others are stopped too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

GRACE_S = 30.0
#: Each service's probe listener (/livez, /readyz with its reasons, /metrics) when it runs on
#: its usual port: that port + 1000.
PROBE_PORTS = {"gateway": 9080, "ocr": 9081, "summarizer": 9082, "worker": 9083}
#: The local Redis of the async jobs (not 6379: a developer's own Redis may be there).
REDIS_PORT = 6383
#: Where a local run keeps what it generates (git-ignored).
RUNS = Path(".runs")


def gateway_env(env: dict[str, str], runs: Path = RUNS) -> dict[str, str]:
    """A local gateway's files, unless the environment names its own: a development API key
    (made once, kept in ``.runs/dev-api-key``, printed) and backends on the local ports."""
    from .gateway.backends import local_backends
    from .ocr.settings import OCRSettings
    from .summarizer.settings import SummarizerSettings

    runs.mkdir(parents=True, exist_ok=True)
    env = dict(env)
    if not env.get("DOCSUM_GATEWAY_API_KEYS_FILE"):
        key_path = runs / "dev-api-key"
        if not key_path.exists():
            key_path.write_text(secrets.token_urlsafe(32) + "\n")
            key_path.chmod(0o600)
        key = key_path.read_text().strip()
        keys_file = runs / "dev-api-keys"
        digest = hashlib.sha256(key.encode()).hexdigest()
        keys_file.write_text(f"# made by `docsum up` from {key_path}\ndev:{digest}\n")
        env["DOCSUM_GATEWAY_API_KEYS_FILE"] = str(keys_file.resolve())
        # The one place a key is shown: the developer's own terminal, on purpose.
        sys.stderr.write(
            f"\ndocsum: development API key (kept in {key_path}):\n"
            f"    export DOCSUM_API_KEY={key}\n\n"
        )
    if not env.get("DOCSUM_GATEWAY_BACKENDS_FILE"):
        backends = runs / "gateway-backends.json"
        ports = OCRSettings().port, SummarizerSettings().port
        backends.write_text(json.dumps(local_backends(*ports), indent=2) + "\n")
        env["DOCSUM_GATEWAY_BACKENDS_FILE"] = str(backends.resolve())
        log.info("gateway backends written (edit to try a canary)", extra={"path": str(backends)})
    return env


def probe_env(env: dict[str, str], services: list[str]) -> dict[str, str]:
    """``env`` with a probe port for each service on its usual port that has none set."""
    env = dict(env)
    for name in services:
        prefix = f"DOCSUM_{name.upper()}_"
        if name in PROBE_PORTS and not env.get(prefix + "PORT"):
            env.setdefault(prefix + "PROBE_PORT", str(PROBE_PORTS[name]))
    return env


def jobs_env(env: dict[str, str], runs: Path = RUNS) -> tuple[dict[str, str], list[str] | None]:
    """The gateway and the worker pointed at the local Redis, and the command starting it;
    None when it is not installed (or the environment names a Redis of its own)."""
    from .jobs.redis_server import REDIS_SERVER, server_command

    env = dict(env)
    command = None
    if not env.get("DOCSUM_GATEWAY_REDIS_URL"):
        if not REDIS_SERVER.exists():
            return env, None
        (runs / "redis").mkdir(parents=True, exist_ok=True)
        command = server_command(REDIS_SERVER, REDIS_PORT, runs / "redis")
        env["DOCSUM_GATEWAY_REDIS_URL"] = f"redis://127.0.0.1:{REDIS_PORT}/0"
    env.setdefault("DOCSUM_WORKER_REDIS_URL", env["DOCSUM_GATEWAY_REDIS_URL"])
    if env.get("DOCSUM_GATEWAY_BACKENDS_FILE"):
        env.setdefault("DOCSUM_WORKER_BACKENDS_FILE", env["DOCSUM_GATEWAY_BACKENDS_FILE"])
    return env, command


def run_stack(services: list[str]) -> int:
    """Start ``services``, wait for Ctrl-C or a child's exit, stop the rest; the exit code."""
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    env = os.environ.copy()
    if "gateway" in services:
        env = gateway_env(env)
    redis_command = None
    if "worker" in services:
        with_jobs, redis_command = jobs_env(env)
        problem = None
        if redis_command is None and not with_jobs.get("DOCSUM_WORKER_REDIS_URL"):
            from .jobs.redis_server import INSTALL_HINT

            problem = f"Redis is not installed (install it with {INSTALL_HINT})"
        elif redis_command is not None and _port_in_use(REDIS_PORT):
            problem = (
                f"port {REDIS_PORT} of 127.0.0.1 is in use (set DOCSUM_GATEWAY_REDIS_URL to "
                "use the Redis there, or stop what listens on it)"
            )
        if problem is None:
            env = with_jobs
        else:
            log.warning(f"{problem}: running without async jobs")
            redis_command = None
            services = [name for name in services if name != "worker"]
    env = probe_env(env, services)
    if redis_command is not None:
        children["redis"] = subprocess.Popen(redis_command, env=env, start_new_session=True)
        log.info("started", extra={"child": "redis", "pid": children["redis"].pid})
    for name in services:
        children[name] = subprocess.Popen(
            [sys.executable, "-m", "docsum.cli", "serve", name],
            env=env,
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
    redis = children.pop("redis", None)  # stopped last: the worker drains into it
    _stop(children)
    if redis is not None:
        _stop({"redis": redis})
    log.info("all services stopped")
    return code


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each child, SIGKILL to those still running after ``GRACE_S``."""
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


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
