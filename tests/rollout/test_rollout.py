"""`docsum rollout` against a Kubernetes API emulator (kmock) and a real Prometheus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docsum.rollout.commands import RolloutError, canary_share, with_canary_weight
from docsum.rollout.gates import Figures, judge
from docsum.rollout.settings import RolloutSettings

from .conftest import Cluster, Traffic, openmetrics, rollout

pytestmark = [pytest.mark.integration]

NOWHERE = "http://127.0.0.1:9"  # a Prometheus that is never there: steps that must not ask it
STABLE_ONLY = {
    "ocr": [{"url": "http://docsum-ocr-pods:8081", "version": "stable", "weight": 100}],
    "summarizer": [
        {"url": "http://docsum-summarizer-pods:8082", "version": "stable", "weight": 100}
    ],
}
AT_10 = {
    **STABLE_ONLY,
    "ocr": [
        {"url": "http://docsum-ocr-pods:8081", "version": "stable", "weight": 90},
        {"url": "http://docsum-ocr-canary-pods:8081", "version": "canary", "weight": 10},
    ],
}


def upstream_series(canary: Traffic, stable: Traffic) -> str:
    return openmetrics(
        [canary, stable], "docsum_upstream_requests", "docsum_upstream_request_duration_seconds"
    )


def ocr(version: str, **kw: float) -> Traffic:
    return Traffic(labels={"upstream": "ocr", "version": version}, error_status="error", **kw)


def slot(name: str, **kw: float) -> Traffic:
    labels = {"job": "gateway", "docsum_io_slot": name, "route": "/api/v1/ocr", "method": "POST"}
    return Traffic(labels=labels, **kw)  # type: ignore[arg-type]


# --- pure logic --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stable", "canary"),
    [
        ("http://staging-docsum-ocr-pods:8081", "http://staging-docsum-ocr-canary-pods:8081"),
        ("http://docsum-summarizer:8082", "http://docsum-summarizer-canary:8082"),
    ],
)
def test_a_new_canary_is_named_after_the_stable_url(stable: str, canary: str) -> None:
    backends = {"ocr": [{"url": stable, "version": "stable", "weight": 100}]}
    assert with_canary_weight(backends, "ocr", 10, None)["ocr"][1]["url"] == canary


def test_weights_split_between_versions_and_keep_the_canary_url_at_zero() -> None:
    at_25 = with_canary_weight(AT_10, "ocr", 25, None)
    assert [e["weight"] for e in at_25["ocr"]] == [75, 25]
    assert canary_share(at_25["ocr"]) == 25
    at_0 = with_canary_weight(at_25, "ocr", 0, None)
    assert at_0["ocr"][1] == {
        "url": "http://docsum-ocr-canary-pods:8081",
        "version": "canary",
        "weight": 0,
    }
    assert at_0["summarizer"] == AT_10["summarizer"]
    with pytest.raises(RolloutError, match="percentage"):
        with_canary_weight(AT_10, "ocr", 120, None)
    with pytest.raises(RolloutError, match="no upstream"):
        with_canary_weight(AT_10, "tts", 10, None)


def test_gate_needs_traffic_and_compares_errors_and_p99() -> None:
    s = RolloutSettings(min_requests=50, max_error_rate_increase=0.01, max_p99_ratio=1.2)
    good = Figures(requests=1000, error_ratio=0.001, p99_s=0.5)
    assert judge(Figures(1000, 0.005, 0.55), good, s).passed
    assert not judge(Figures(10, 0.0, 0.5), good, s).passed  # too few calls to judge
    assert "error ratio" in judge(Figures(1000, 0.05, 0.5), good, s).reasons[0]
    assert "p99" in judge(Figures(1000, 0.0, 0.9), good, s).reasons[0]


# --- canary ------------------------------------------------------------------------------------
async def test_first_canary_step_adds_the_backend_without_asking_prometheus(
    cluster: Cluster, kubeconfig: Path
) -> None:
    cluster.put_backends(STABLE_ONLY)
    r = await rollout(kubeconfig, NOWHERE, "canary", "--service", "ocr", "--weight", "10")
    assert r.code == 0, r.err
    assert cluster.backends()["ocr"] == AT_10["ocr"]
    assert cluster.backends()["summarizer"] == STABLE_ONLY["summarizer"]


async def test_raising_a_healthy_canary_passes_the_gate(
    cluster: Cluster, kubeconfig: Path, prometheus
) -> None:
    url = prometheus(
        upstream_series(ocr("canary", error_ratio=0.002), ocr("stable", error_ratio=0.001))
    )
    cluster.put_backends(AT_10)
    r = await rollout(kubeconfig, url, "canary", "--service", "ocr", "--weight", "50")
    assert r.code == 0, r.out + r.err
    assert "gate pass" in r.out
    assert [e["weight"] for e in cluster.backends()["ocr"]] == [50, 50]


@pytest.mark.parametrize(
    ("canary", "why"),
    [
        ({"error_ratio": 0.08}, "error ratio"),
        ({"latency_s": 2.0}, "p99"),
        ({"rps": 0.01}, "fewer than"),
    ],
)
async def test_a_bad_or_idle_canary_is_refused_and_nothing_changes(
    cluster: Cluster, kubeconfig: Path, prometheus, canary: dict[str, float], why: str
) -> None:
    url = prometheus(upstream_series(ocr("canary", **canary), ocr("stable", error_ratio=0.001)))
    cluster.put_backends(AT_10)
    r = await rollout(kubeconfig, url, "canary", "--service", "ocr", "--weight", "50")
    assert r.code == 1, r.out + r.err
    assert "gate FAIL" in r.out and why in r.out
    assert cluster.backends() == AT_10
    assert cluster.patches() == 0


async def test_dry_run_prints_the_patch_and_sends_nothing(
    cluster: Cluster, kubeconfig: Path
) -> None:
    cluster.put_backends(STABLE_ONLY)
    r = await rollout(
        kubeconfig, NOWHERE, "canary", "--service", "summarizer", "--weight", "20", "--dry-run"
    )
    assert r.code == 0, r.err
    patch = json.loads(r.out[r.out.index("{") :])
    backends = json.loads(patch["data"]["backends.json"])
    assert backends["summarizer"][1] == {
        "url": "http://docsum-summarizer-canary-pods:8082",
        "version": "canary",
        "weight": 20,
    }
    assert cluster.patches() == 0
    assert cluster.backends() == STABLE_ONLY


async def test_abort_sends_the_canary_no_traffic_even_when_prometheus_is_down(
    cluster: Cluster, kubeconfig: Path
) -> None:
    cluster.put_backends(AT_10)
    r = await rollout(kubeconfig, NOWHERE, "abort", "--service", "ocr")
    assert r.code == 0, r.err
    assert [e["weight"] for e in cluster.backends()["ocr"]] == [100, 0]


async def test_unreachable_prometheus_stops_a_gated_step(
    cluster: Cluster, kubeconfig: Path
) -> None:
    cluster.put_backends(AT_10)
    r = await rollout(kubeconfig, NOWHERE, "canary", "--service", "ocr", "--weight", "50")
    assert r.code == 2
    assert "cannot reach Prometheus" in r.err
    assert cluster.backends() == AT_10


# --- blue/green --------------------------------------------------------------------------------
async def test_promote_switches_the_slots_and_abort_switches_back(
    cluster: Cluster, kubeconfig: Path, prometheus
) -> None:
    url = prometheus(
        openmetrics(
            [slot("green", error_ratio=0.0), slot("blue", error_ratio=0.001)],
            "docsum_http_requests",
            "docsum_http_request_duration_seconds",
        )
    )
    cluster.put_backends(STABLE_ONLY)
    cluster.put_service("docsum-gateway", "blue")
    cluster.put_service("docsum-gateway-preview", "green")
    r = await rollout(kubeconfig, url, "promote")
    assert r.code == 0, r.out + r.err
    live = cluster.service("docsum-gateway")
    assert live["spec"]["selector"]["docsum.io/slot"] == "green"
    assert live["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
    assert live["metadata"]["annotations"]["docsum.io/previous-slot"] == "blue"
    assert cluster.service("docsum-gateway-preview")["spec"]["selector"]["docsum.io/slot"] == "blue"

    status = await rollout(kubeconfig, url, "status")
    assert "live slot green, preview slot blue" in status.out, status.err

    r = await rollout(kubeconfig, NOWHERE, "abort")
    assert r.code == 0, r.err
    assert cluster.service("docsum-gateway")["spec"]["selector"]["docsum.io/slot"] == "blue"
    assert (
        cluster.service("docsum-gateway-preview")["spec"]["selector"]["docsum.io/slot"] == "green"
    )


async def test_promote_refuses_a_failing_preview(
    cluster: Cluster, kubeconfig: Path, prometheus
) -> None:
    url = prometheus(
        openmetrics(
            [slot("green", error_ratio=0.2), slot("blue")],
            "docsum_http_requests",
            "docsum_http_request_duration_seconds",
        )
    )
    cluster.put_service("docsum-gateway", "blue")
    cluster.put_service("docsum-gateway-preview", "green")
    r = await rollout(kubeconfig, url, "promote", "--dry-run")
    assert r.code == 1, r.out + r.err
    assert "error ratio 20.00%" in r.out
    assert cluster.service("docsum-gateway")["spec"]["selector"]["docsum.io/slot"] == "blue"
    assert cluster.patches() == 0


async def test_status_shows_weights_and_the_figures_of_both_versions(
    cluster: Cluster, kubeconfig: Path, prometheus
) -> None:
    url = prometheus(upstream_series(ocr("canary", error_ratio=0.05), ocr("stable")))
    cluster.put_backends(AT_10)
    r = await rollout(kubeconfig, url, "status")
    assert r.code == 0, r.err
    assert "ocr: stable 90, canary 10 (canary 10 %)" in r.out
    assert "canary over 5m:" in r.out and "errors 5.00%" in r.out
    assert "gateway: one Deployment" in r.out
