"""The stack of `make e2e`: the images `make images` built, deployed from k8s/overlays/local."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .kube import ROOT, Stack, api_key_secret, render

# These tests need the images and podman: `make e2e` runs them (DOCSUM_E2E=1), `make test` not.
collect_ignore_glob = [] if os.environ.get("DOCSUM_E2E") else ["test_*.py"]

NETWORK = "docsum-e2e"
#: The gateway's port on the host (the local overlay's hostPort).
GATEWAY = "http://127.0.0.1:18080"


@dataclass
class Deployed:
    stack: Stack
    api_key: str
    ready_s: dict[str, float]

    def container(self, name: str):  # type: ignore[no-untyped-def]
        return next(c for c in self.stack.containers if c.name == name)


def startup_budget_s(spec: dict) -> float:
    """How long the kubelet would wait for the startup probe before restarting the container."""
    probe = spec.get("startupProbe") or spec["readinessProbe"]
    return float(
        probe.get("initialDelaySeconds", 0)
        + probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
    )


@pytest.fixture(scope="session")
def deployed() -> Iterator[Deployed]:
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run `make e2e` (it installs it)")
    docs = render(ROOT / "k8s" / "overlays" / "local")
    key = secrets.token_urlsafe(24)
    # What a user does once per cluster (docs/deploy.md): the gateway's API keys Secret.
    docs.append(api_key_secret("docsum-api-keys", "e2e", key))
    services = [d for d in docs if d["kind"] == "Service"]
    stack = Stack.from_docs(NETWORK, docs)
    try:
        stack.up(services)
        budget = max(startup_budget_s(c.spec) for c in stack.containers)
        ready = stack.wait_ready(stack.containers, timeout_s=budget)
        yield Deployed(stack, key, ready)
    finally:
        stack.down()
    left = stack.leftovers()
    assert not left, f"left behind after teardown: {left}"
