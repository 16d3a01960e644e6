"""The backends file: which replicas serve each upstream, in which version, with which weight.

Format (shared with the Kubernetes manifests, a ConfigMap there)::

    {"ocr": [{"url": "http://docsum-ocr-pods:8081", "version": "stable", "weight": 90},
             {"url": "http://docsum-ocr-canary-pods:8081", "version": "canary", "weight": 10}],
     "summarizer": [{"url": "http://docsum-summarizer-pods:8082", "version": "stable"}]}

A version's weight is the sum of its backends' weights: traffic splits between versions by
weight (90/10 is a canary, 0/100 a blue/green flip), then between the endpoints of the chosen
version by least outstanding requests. A URL's endpoints are the addresses its host resolves
to (``resolve.py``): one per ready pod for a headless Service's name, so the gateway balances,
retries and breaks circuits per pod; one for a ClusterIP Service or an IP literal.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

#: The upstreams the gateway routes to.
UPSTREAMS = ("ocr", "summarizer")


class BackendSpec(BaseModel):
    """A URL serving one version of an upstream: a replica, or a Kubernetes Service (a
    headless one's name stands for all of its pods)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="Base URL, e.g. http://docsum-ocr-pods:8081")
    version: str = Field("stable", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    weight: float = Field(100.0, ge=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http(s) URL")
        if not urlsplit(url).hostname:
            raise ValueError(f"{url!r} has no host")
        return url.rstrip("/")

    @property
    def host(self) -> str:
        """The URL's host (lower case, no brackets): the name resolved into endpoints."""
        return urlsplit(self.url).hostname or ""


class BackendsConfigError(ValueError):
    """The backends file cannot be used; the message says where and why."""


def parse_backends(data: object, source: str = "backends") -> dict[str, list[BackendSpec]]:
    """Validate decoded JSON: every upstream present, with a positive total weight."""
    if not isinstance(data, dict):
        raise BackendsConfigError(f"{source}: expected a JSON object of upstream → backends")
    unknown = sorted(set(data) - set(UPSTREAMS))
    if unknown:
        raise BackendsConfigError(f"{source}: unknown upstream(s) {unknown}; known: {UPSTREAMS}")
    out: dict[str, list[BackendSpec]] = {}
    for name in UPSTREAMS:
        entries = data.get(name)
        if not isinstance(entries, list) or not entries:
            raise BackendsConfigError(f"{source}: {name!r} needs a non-empty list of backends")
        try:
            specs = [BackendSpec.model_validate(e) for e in entries]
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "entry"
            raise BackendsConfigError(f"{source}: {name}: {where}: {first['msg']}") from None
        if len({s.url for s in specs}) != len(specs):
            raise BackendsConfigError(f"{source}: {name}: a URL is listed twice")
        if sum(s.weight for s in specs) <= 0:
            raise BackendsConfigError(
                f"{source}: {name}: every weight is 0; give the version to serve a weight > 0"
            )
        out[name] = specs
    return out


def load_backends(path: Path) -> dict[str, list[BackendSpec]]:
    """Read and validate the backends file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BackendsConfigError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BackendsConfigError(f"{path}: not JSON: {exc}") from None
    return parse_backends(data, str(path))


def local_backends(ocr_port: int = 8081, summarizer_port: int = 8082) -> dict[str, object]:
    """The backends of ``docsum up``: the local services, one stable version each."""
    return {
        "ocr": [{"url": f"http://127.0.0.1:{ocr_port}", "version": "stable", "weight": 100}],
        "summarizer": [
            {"url": f"http://127.0.0.1:{summarizer_port}", "version": "stable", "weight": 100}
        ],
    }
