"""Settings of ``docsum rollout``: environment variables prefixed ``DOCSUM_ROLLOUT_``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RolloutSettings(BaseSettings):
    """Where the cluster and Prometheus are, and how strict the gates are."""

    model_config = SettingsConfigDict(env_prefix="DOCSUM_ROLLOUT_", extra="ignore")

    #: Namespace docsum runs in.
    namespace: str = "docsum"
    #: A kubeconfig file; empty → in-cluster config when in a pod, else ~/.kube/config.
    kubeconfig: str | None = None
    #: A kubeconfig context; empty → the current one.
    context: str | None = None
    #: Prometheus that scrapes docsum (the gates query it).
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    #: Seconds one Prometheus query may take.
    prometheus_timeout_s: float = Field(10.0, gt=0)
    # The canary gate: the defaults are the chart's canaryGate (helm/docsum/values.yaml), which
    # the Argo analyses and the DocsumCanaryWorseThanStable alert judge by too
    # (tests/rollout/test_gate_definition.py holds them together).
    #: Range of the rate() windows in the gate queries (a PromQL duration).
    window: str = "5m"
    #: Calls the new version must have served in the window before it can be judged.
    min_requests: float = Field(50.0, ge=0)
    #: The new version fails when its error ratio exceeds the current one's by more than this.
    max_error_rate_increase: float = Field(0.01, ge=0, le=1)
    #: ... or when its p99 latency exceeds the current one's times this.
    max_p99_ratio: float = Field(1.2, ge=1)
    #: The gateway's backends ConfigMap (canary weights live there).
    backends_configmap: str = "docsum-gateway-backends"
    #: Key of the backends file in that ConfigMap.
    backends_key: str = "backends.json"
    #: The live gateway Service (blue/green: its slot selector is switched).
    gateway_service: str = "docsum-gateway"
    #: The gateway Service that selects the slot being tried.
    preview_service: str = "docsum-gateway-preview"
    #: Pod label that tells the blue/green slots apart.
    slot_label: str = "docsum.io/slot"
