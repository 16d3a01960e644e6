"""Arguments of ``docsum rollout`` (the kubernetes client is imported only when a command runs)."""

from __future__ import annotations

import argparse
import sys

UPSTREAMS = ("ocr", "summarizer")


def configure(p: argparse.ArgumentParser) -> None:
    """Add the rollout sub-commands and their options to ``p``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="(DOCSUM_ROLLOUT_NAMESPACE, default docsum)")
    common.add_argument(
        "--kubeconfig", help="kubeconfig file (default: in-cluster, ~/.kube/config)"
    )
    common.add_argument("--context", help="kubeconfig context")
    common.add_argument("--prometheus-url", help="(DOCSUM_ROLLOUT_PROMETHEUS_URL)")
    common.add_argument("--window", help="rate window of the gates, e.g. 5m")
    sub = p.add_subparsers(dest="rollout_command", required=True)

    s = sub.add_parser("status", parents=[common], help="weights, slots and gate figures")
    s.add_argument("--no-metrics", dest="metrics", action="store_false", help="skip Prometheus")

    s = sub.add_parser(
        "canary", parents=[common], help="set a canary's share of traffic (gated when raised)"
    )
    s.add_argument("--service", choices=UPSTREAMS, required=True, help="which upstream")
    s.add_argument("--weight", type=float, required=True, help="percent of calls, 0-100")
    s.add_argument(
        "--canary-url", help="when adding the canary backend (default docsum-<svc>-canary)"
    )
    s.add_argument("--dry-run", action="store_true", help="print the patch, change nothing")
    s.add_argument("--force", action="store_true", help="skip the Prometheus gate")

    s = sub.add_parser(
        "promote", parents=[common], help="blue/green: make the preview slot live (gated)"
    )
    s.add_argument("--dry-run", action="store_true", help="print the patches, change nothing")
    s.add_argument("--force", action="store_true", help="skip the Prometheus gate")

    s = sub.add_parser(
        "abort", parents=[common], help="back out: gateway to its previous slot, or canary to 0"
    )
    s.add_argument(
        "--service",
        choices=(*UPSTREAMS, "gateway"),
        default="gateway",
        help="gateway: its blue/green slot; ocr or summarizer: its canary",
    )
    s.add_argument("--dry-run", action="store_true", help="print the patches, change nothing")
    p.set_defaults(func=run_rollout)


def run_rollout(args: argparse.Namespace) -> int:
    from .commands import run
    from .settings import RolloutSettings

    overrides = {
        key: value
        for key, value in {
            "namespace": args.namespace,
            "kubeconfig": args.kubeconfig,
            "context": args.context,
            "prometheus_url": args.prometheus_url,
            "window": args.window,
        }.items()
        if value is not None
    }
    settings = RolloutSettings(**overrides)
    opts = {
        k: v
        for k, v in vars(args).items()
        if k in {"metrics", "service", "weight", "canary_url", "dry_run", "force"}
    }
    return run(args.rollout_command, settings, sys.stdout, sys.stderr, **opts)
