"""The two objects ``docsum rollout`` changes, through the Kubernetes API.

* the gateway's backends ConfigMap: ``backends.json`` maps an upstream to its versions and
  weights (the gateway re-reads it when the mounted file changes);
* the gateway Services' selectors: ``docsum-gateway`` selects the live slot, the preview
  Service the other one.

Every change is a merge patch, returned so ``--dry-run`` can print it instead of sending it.
"""

from __future__ import annotations

import json
from typing import Any

from .settings import RolloutSettings

#: Annotation on the live Service: the slot it selected before the last promote (for abort).
PREVIOUS_SLOT = "docsum.io/previous-slot"


class ClusterError(RuntimeError):
    """The cluster refused or lacks what a command needs; the message says which object."""


def load_client(settings: RolloutSettings) -> Any:
    """A CoreV1Api from the kubeconfig (or the pod's service account inside a cluster)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if settings.kubeconfig is None and settings.context is None:
            try:
                config.load_incluster_config()
            except ConfigException:
                config.load_kube_config()
        else:
            config.load_kube_config(config_file=settings.kubeconfig, context=settings.context)
    except (ConfigException, OSError) as exc:
        raise ClusterError(f"no Kubernetes credentials: {exc}; pass --kubeconfig") from exc
    return client.CoreV1Api()


class Cluster:
    """Reads and patches the gateway's ConfigMap and Services in one namespace."""

    def __init__(self, api: Any, settings: RolloutSettings) -> None:
        self.api = api
        self.s = settings

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise ClusterError(
                f"{what} in namespace {self.s.namespace}: {exc.status} {exc.reason}"
            ) from exc

    # --- backends (canary weights) ---------------------------------------------------------
    def backends(self) -> dict[str, list[dict[str, Any]]]:
        cm = self._call(
            f"read ConfigMap {self.s.backends_configmap}",
            self.api.read_namespaced_config_map,
            self.s.backends_configmap,
            self.s.namespace,
        )
        raw = (cm.data or {}).get(self.s.backends_key)
        if raw is None:
            raise ClusterError(
                f"ConfigMap {self.s.backends_configmap} has no key {self.s.backends_key}"
            )
        try:
            data: dict[str, list[dict[str, Any]]] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ClusterError(f"{self.s.backends_key} is not JSON: {exc}") from exc
        return data

    def backends_patch(self, backends: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        return {"data": {self.s.backends_key: json.dumps(backends, separators=(",", ":"))}}

    def patch_backends(self, patch: dict[str, Any]) -> None:
        self._call(
            f"patch ConfigMap {self.s.backends_configmap}",
            self.api.patch_namespaced_config_map,
            self.s.backends_configmap,
            self.s.namespace,
            patch,
        )

    # --- Services (blue/green) -------------------------------------------------------------
    def service(self, name: str) -> Any:
        return self._call(
            f"read Service {name}", self.api.read_namespaced_service, name, self.s.namespace
        )

    def slot(self, name: str) -> str:
        svc = self.service(name)
        slot = (svc.spec.selector or {}).get(self.s.slot_label)
        if not slot:
            raise ClusterError(
                f"Service {name} selects no {self.s.slot_label}: blue/green is not enabled "
                "(helm: gateway.blueGreen.enabled, kustomize: components/blue-green)"
            )
        return str(slot)

    def previous_slot(self) -> str | None:
        svc = self.service(self.s.gateway_service)
        return (svc.metadata.annotations or {}).get(PREVIOUS_SLOT)

    def selector_patch(self, slot: str, previous: str | None = None) -> dict[str, Any]:
        patch: dict[str, Any] = {"spec": {"selector": {self.s.slot_label: slot}}}
        if previous is not None:
            patch["metadata"] = {"annotations": {PREVIOUS_SLOT: previous}}
        return patch

    def patch_service(self, name: str, patch: dict[str, Any]) -> None:
        self._call(
            f"patch Service {name}",
            self.api.patch_namespaced_service,
            name,
            self.s.namespace,
            patch,
        )
