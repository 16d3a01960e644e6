"""``make loadtest``: run Locust headless against the local stack and judge it against the SLOs.

1. The stack: if the gateway at ``--host`` (default http://127.0.0.1:8080) is ready, it is
   used as it is (``make run`` in another terminal). If nothing answers there, the stack is
   started here (``docsum up``: OCR, summarizer and gateway on their default ports, with
   Redis and a worker when Redis is installed, logs in ``reports/loadtest_stack.log``) and
   stopped at the end. ``--no-start`` refuses instead. ``--routes summarize_async`` (async
   jobs) needs Redis: a stack started here waits for its worker; a running one must answer
   the async routes.
2. The API key: ``DOCSUM_API_KEY``, else the development key ``make run`` keeps in
   ``.runs/dev-api-key``.
3. Locust runs headless for ``--run-time`` with the shape asked for (default: the ``[load]``
   table of ``loadtests/slo.toml``) and writes its CSV files and HTML report under
   ``reports/`` (``<out>_stats.csv``, ``<out>_failures.csv``, ``<out>.html``, ...).
4. Per route: requests, rate, p50/p95/p99, error ratio and a verdict against ``slo.toml``,
   printed and written to ``<out>_verdict.csv`` / ``.json``. Exit 0 when every route with a
   verdict meets its SLO, 1 when one is broken, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docsum.jobs.redis_server import INSTALL_HINT, REDIS_SERVER
from docsum.local import PROBE_PORTS
from loadtests import report
from tests.support.services import answers_ok, wait_until_ok

ROOT = Path(__file__).resolve().parents[1]
LOADTESTS = ROOT / "loadtests"
DEV_KEY = ROOT / ".runs" / "dev-api-key"
SHAPES = ("arrival", "ramp", "step", "spike", "closed")
USER_CLASSES = {
    "summarize": "SummarizeUser",
    "ocr": "OcrUser",
    "document": "DocumentUser",
    "summarize_async": "SummarizeAsyncUser",
}
#: The routes served by workers through Redis.
JOB_ROUTES = ("summarize_async",)
STACK_READY_TIMEOUT_S = 300.0
#: Where `docsum up` serves gateway, OCR and summarizer.
LOCAL_URLS = ("http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1:8082")
#: Where the worker `docsum up` starts answers its probes (/readyz: Redis and its group).
LOCAL_WORKER_PROBE = f"http://127.0.0.1:{PROBE_PORTS['worker']}"

log = logging.getLogger("docsum.loadtest")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def ready(url: str) -> bool:
    """Whether ``url``/readyz answers 200 now."""
    return answers_ok(f"{url}/readyz")


@dataclass
class Stack:
    """A local stack this run started (and must stop), or None of it."""

    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def wait_ready(self, urls: list[str], timeout_s: float = STACK_READY_TIMEOUT_S) -> None:
        """Wait until each of ``urls``/readyz answers; SystemExit if the stack stops or is late."""
        proc = self.proc
        assert proc is not None
        deadline = time.monotonic() + timeout_s
        try:
            for url in urls:
                left = deadline - time.monotonic()
                wait_until_ok(f"{url}/readyz", left, alive=lambda: proc.poll() is None)
        except RuntimeError:
            raise SystemExit(
                f"`docsum up` exited ({proc.returncode}); see {self.log_path}"
            ) from None
        except TimeoutError:
            self.stop()
            raise SystemExit(
                f"{', '.join(urls)}: not ready in {timeout_s:g} s; see {self.log_path}"
            ) from None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # docsum up forwards SIGTERM to its services, which drain; it waits for them.
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def needs_jobs(routes: str) -> bool:
    """Whether ``--routes`` has a route that needs Redis and a worker."""
    return any(r.strip() in JOB_ROUTES for r in routes.split(","))


def ensure_stack(
    urls: list[str], may_start: bool, log_path: Path, env: dict[str, str], jobs: bool = False
) -> Stack:
    """Use the services at ``urls`` if ready, else start ``docsum up`` and wait for them (with
    ``jobs``, only when Redis is installed: see :func:`prepare_jobs` for the worker)."""
    if all(ready(u) for u in urls):
        log.info("using the running stack at %s", ", ".join(urls))
        return Stack()
    if not may_start:
        raise SystemExit(f"not ready: {[u for u in urls if not ready(u)]} (--no-start was given)")
    if not set(urls) <= set(LOCAL_URLS):
        raise SystemExit(f"not ready: {urls}; only the local stack ({LOCAL_URLS}) is started here")
    if jobs and not (ROOT / REDIS_SERVER).exists():
        raise SystemExit(f"async jobs need Redis and a worker: install Redis with {INSTALL_HINT}")
    log.info("no stack at %s: starting `docsum up` (log: %s)", ", ".join(urls), log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "docsum.cli", "up"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack = Stack(proc, log_path)
    stack.wait_ready(urls)
    log.info("stack ready")
    return stack


def api_key() -> str:
    key = os.environ.get("DOCSUM_API_KEY", "")
    if not key and DEV_KEY.is_file():
        key = DEV_KEY.read_text(encoding="utf-8").strip()
    return key


def prepare_jobs(stack: Stack, host: str, key: str) -> None:
    """Stop unless the gateway at ``host`` serves the async routes; wait for the worker of a
    stack started here."""
    check_jobs(host, key, stack.log_path)
    if stack.proc is not None:
        stack.wait_ready([LOCAL_WORKER_PROBE])
        log.info("worker ready")


def check_jobs(host: str, key: str, log_path: Path | None = None) -> None:
    """Stop unless the gateway at ``host`` serves the async routes (it has a Redis)."""
    request = urllib.request.Request(
        f"{host}/api/v1/operations?page_size=1", headers={"X-API-Key": key}
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            return
    except urllib.error.HTTPError as exc:
        why = f"HTTP {exc.code}: {exc.read(300).decode(errors='replace')}"
    except OSError as exc:
        why = str(exc)
    raise SystemExit(
        f"the gateway at {host} does not serve async jobs ({why}); it needs Redis and a worker "
        "(make redis, then make run)" + (f"; see {log_path}" if log_path else "")
    )


def locust_command(args: argparse.Namespace, out: Path) -> list[str]:
    """The Locust command line for ``args`` (the API key travels in the environment)."""
    files = [str(LOADTESTS / "locustfile.py")]
    if args.shape != "closed":
        files.append(str(LOADTESTS / "shapes" / f"{args.shape}.py"))
    cmd = [
        sys.executable, "-m", "locust", "-f", ",".join(files), "--headless", "--only-summary",
        "--host", args.host, "--run-time", args.run_time, "--target", args.target,
        "--ocr-host", args.ocr_host, "--summarizer-host", args.summarizer_host,
        "--routes", args.routes, "--csv", str(out), "--html", f"{out}.html",
        "--summary-json", f"{out}_summary.json", "--exit-code-on-error", "0",
    ]  # fmt: skip
    if args.shape == "arrival":
        cmd += ["--arrival-rate", str(args.arrival_rate), "--arrival-users", "1"]
        if args.weights:
            cmd += ["--weights", args.weights]
    else:
        cmd += ["--users", str(args.users), "--spawn-rate", str(args.spawn_rate)]
    if args.backend_version:
        cmd += ["--backend-version", args.backend_version]
    if needs_jobs(args.routes):
        # The jobs still open at the end are waited for, not dropped: their time is the tail.
        wait = f"{math.ceil(args.job_timeout_s + 30)}"
        cmd += ["--job-timeout-s", str(args.job_timeout_s)]
        cmd += ["--drain-s", wait] if args.shape == "arrival" else ["--stop-timeout", wait]
    if args.shape != "arrival":  # the arrival shape picks its own (open-loop) users
        cmd += [USER_CLASSES[r] for r in args.routes.split(",") if r in USER_CLASSES]
    return cmd + list(args.locust_args)


def run_locust(args: argparse.Namespace, out: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run Locust; the summary it wrote at the end."""
    out.parent.mkdir(parents=True, exist_ok=True)
    summary_path = Path(f"{out}_summary.json")
    summary_path.unlink(missing_ok=True)
    cmd = locust_command(args, out)
    log.info("locust: %s", " ".join(cmd[2:]))
    proc = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    if proc.returncode != 0 or not summary_path.is_file():
        raise RuntimeError(f"locust failed (exit {proc.returncode}); nothing to judge")
    return dict(json.loads(summary_path.read_text(encoding="utf-8")))


def parser() -> argparse.ArgumentParser:
    defaults = report.load_defaults()
    p = argparse.ArgumentParser(
        prog="make loadtest",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Arguments after -- go to Locust as they are.",
    )
    p.add_argument("--shape", choices=SHAPES, default=defaults.get("shape", "arrival"))
    p.add_argument("--arrival-rate", type=float, default=defaults.get("arrival_rate", 1.0))
    p.add_argument(
        "--weights",
        default=defaults.get("weights", ""),
        help="open loop: route shares, e.g. summarize=2,ocr=1,document=1",
    )
    p.add_argument("--users", type=int, default=10, help="closed-loop shapes: peak users")
    p.add_argument("--spawn-rate", type=float, default=2.0)
    p.add_argument("--run-time", default=defaults.get("run_time", "60s"))
    p.add_argument(
        "--routes",
        default="summarize,ocr,document",
        help="comma-separated, of summarize, ocr, document, summarize_async (async jobs)",
    )
    p.add_argument(
        "--job-timeout-s",
        type=float,
        default=300.0,
        help="summarize_async: seconds from submit after which a job is a failure",
    )
    p.add_argument("--target", choices=["gateway", "direct"], default="gateway")
    p.add_argument("--host", default="http://127.0.0.1:8080", help="the gateway")
    p.add_argument("--ocr-host", default="http://127.0.0.1:8081")
    p.add_argument("--summarizer-host", default="http://127.0.0.1:8082")
    p.add_argument("--backend-version", default="", help="pin a version (X-Docsum-Backend)")
    p.add_argument("--slo", type=Path, default=report.SLO_FILE)
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "loadtest")
    p.add_argument("--no-start", action="store_true", help="never start the stack here")
    p.add_argument("locust_args", nargs="*", help=argparse.SUPPRESS)
    return p


def stack_urls(args: argparse.Namespace) -> list[str]:
    if args.target == "gateway":
        return [args.host]  # ready only when its upstreams are
    routes = args.routes.split(",")
    return [
        u for r, u in (("ocr", args.ocr_host), ("summarize", args.summarizer_host)) if r in routes
    ]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="loadtest: %(message)s")
    args = parser().parse_args(argv)
    # `kill` stops a run like Ctrl-C does: the stack started here is stopped on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    env = {
        **os.environ,
        # Only for a stack started here: the load must not be throttled by the per-key limit.
        "DOCSUM_GATEWAY_RATE_LIMIT_RPS": os.environ.get("DOCSUM_GATEWAY_RATE_LIMIT_RPS", "1000"),
        "DOCSUM_GATEWAY_RATE_LIMIT_BURST": os.environ.get(
            "DOCSUM_GATEWAY_RATE_LIMIT_BURST", "1000"
        ),
    }
    jobs = args.target == "gateway" and needs_jobs(args.routes)
    stack = ensure_stack(
        stack_urls(args), not args.no_start, Path(f"{args.out}_stack.log"), env, jobs
    )
    try:
        env["DOCSUM_API_KEY"] = api_key()
        if args.target == "gateway" and not env["DOCSUM_API_KEY"]:
            raise SystemExit("no API key: set DOCSUM_API_KEY (make run prints one)")
        if jobs:
            prepare_jobs(stack, args.host, env["DOCSUM_API_KEY"])
        try:
            summary = run_locust(args, args.out, env)
        except RuntimeError as exc:
            log.error("%s", exc)
            return 2
    finally:
        stack.stop()
    results = report.judge(summary, report.load_slos(args.slo))
    sys.stdout.write("\n")
    report.render_table(results, sys.stdout)
    report.write_csv(results, Path(f"{args.out}_verdict.csv"))
    report.write_json(
        results,
        Path(f"{args.out}_verdict.json"),
        {
            "shape": args.shape,
            "arrival_rate": args.arrival_rate,
            "weights": args.weights,
            "run_time": args.run_time,
            "routes": args.routes,
            "target": args.target,
        },
    )
    ok = report.passed(results)
    sys.stdout.write(
        f"\nSLO verdict ({args.slo.name}): {'PASS' if ok else 'FAIL'}"
        f" — report: {args.out}.html, {args.out}_stats.csv, {args.out}_verdict.csv\n"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
