"""The gateway's state: its upstreams, the API keys, the rate limiter, and their reloading."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from ..common.errors import RateLimited, Unauthorized
from ..common.heap import IdleTrim
from . import metrics
from .auth import KeyRing, KeysFileError, load_keys
from .backends import UPSTREAMS, BackendsConfigError, BackendSpec, load_backends, parse_backends
from .backends import local_backends as _local_backends
from .limits import BodyBudget, RateLimiter
from .pipeline import DocumentPipeline
from .settings import GatewaySettings
from .upstreams import Upstream, probe_forever
from .watch import ChangeDetector

log = logging.getLogger(__name__)


class ConfigError(RuntimeError):
    """The gateway cannot start with these settings; the message says what to fix."""


class Gateway:
    def __init__(
        self, settings: GatewaySettings, upstreams: Mapping[str, Upstream] | None = None
    ) -> None:
        """``upstreams``: one :class:`Upstream` per name in ``backends.UPSTREAMS`` (made from
        the settings when None); the backends file fills their routing tables."""
        self.settings = settings
        if upstreams is None:
            upstreams = {
                "ocr": Upstream("ocr", settings.ocr),
                "summarizer": Upstream("summarizer", settings.summarizer),
            }
        self.upstreams: dict[str, Upstream] = dict(upstreams)
        self.limiter = RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst)
        self.uploads = BodyBudget(settings.max_inflight_body_bytes)
        self.idle_trim = IdleTrim(settings.trim_idle_s)
        self.pipeline = DocumentPipeline(
            settings, self.upstreams["ocr"], self.upstreams["summarizer"]
        )
        if settings.api_keys_file is None:
            raise ConfigError(
                "DOCSUM_GATEWAY_API_KEYS_FILE is not set: the gateway needs a file of "
                "'<name>:<sha256 hex of the key>' lines (`docsum up` makes a development one)"
            )
        try:
            self.keys = KeyRing.from_mapping(load_keys(settings.api_keys_file))
            self._apply_backends(self._read_backends())
        except (KeysFileError, BackendsConfigError) as exc:
            raise ConfigError(str(exc)) from None
        if not self.keys.digests:
            log.warning("the API keys file has no key: every API request will get 401")
        watched = [p for p in (settings.backends_file, settings.api_keys_file) if p is not None]
        self._detector = ChangeDetector(watched)

    # --- requests ---------------------------------------------------------------------------

    def admit(self, key: str | None) -> str:
        """The caller's name if ``key`` is valid and within its rate limit; else 401 / 429."""
        caller = self.keys.identify(key)
        if caller is None:
            metrics.AUTH_FAILURES.inc()
            raise Unauthorized(
                "a valid API key is needed: send it as 'X-API-Key: <key>' or "
                "'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        wait_s = self.limiter.check(caller)
        if wait_s:
            metrics.RATE_LIMITED.inc()
            raise RateLimited(
                f"rate limit of {self.settings.rate_limit_rps:g} requests/s "
                f"(burst {self.settings.rate_limit_burst}) reached; retry in {wait_s} s",
                headers={"Retry-After": str(wait_s), **self.limiter.headers(caller)},
            )
        return caller

    # --- configuration ----------------------------------------------------------------------

    def _read_backends(self) -> dict[str, list[BackendSpec]]:
        if self.settings.backends_file is None:
            return parse_backends(_local_backends(), "default local backends")
        return load_backends(self.settings.backends_file)

    def _apply_backends(self, specs: dict[str, list[BackendSpec]]) -> None:
        for name in UPSTREAMS:
            self.upstreams[name].apply(specs[name])
        log.info(
            "backends in use",
            extra={
                "backends": {
                    name: [f"{s.url} {s.version} {s.weight:g}" for s in specs[name]]
                    for name in UPSTREAMS
                }
            },
        )

    def reload(self, reason: str, only_changed: bool = False) -> None:
        """Read the backends and keys files again; a bad file is logged and the old kept."""
        s = self.settings
        seen = set(self._detector.changed())  # also refreshes the stamps on SIGHUP
        changed = seen if only_changed else None
        if s.backends_file is not None and (changed is None or s.backends_file in changed):
            try:
                self._apply_backends(load_backends(s.backends_file))
                log.info("backends reloaded", extra={"reason": reason})
            except BackendsConfigError as exc:
                log.error("backends file rejected; keeping the current backends: %s", exc)
        if s.api_keys_file is not None and (changed is None or s.api_keys_file in changed):
            try:
                self.keys = KeyRing.from_mapping(load_keys(s.api_keys_file))
                count = len(self.keys.digests)
                log.info("API keys reloaded", extra={"reason": reason, "keys": count})
            except KeysFileError as exc:
                log.error("API keys file rejected; keeping the current keys: %s", exc)

    async def watch_files(self) -> None:
        """Reload a file when it changes, checking every ``reload_interval_s``."""
        interval = self.settings.reload_interval_s
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            self.reload("file changed", only_changed=True)

    async def probe_upstreams(self) -> None:
        """Keep each backend's readiness fresh (readiness is never checked per /readyz)."""
        await probe_forever(list(self.upstreams.values()), self.settings)

    async def readiness(self) -> str | None:
        """None when each upstream has a backend that answered /readyz, else why not."""
        reasons = [r for u in self.upstreams.values() if (r := u.ready_reason())]
        return "; ".join(reasons) or None

    async def aclose(self) -> None:
        await self.pipeline.aclose()
        for upstream in self.upstreams.values():
            with contextlib.suppress(Exception):
                await upstream.aclose()
