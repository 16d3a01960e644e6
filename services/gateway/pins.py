"""``X-Docsum-Backend``: pin a request to one version of the upstreams.

``X-Docsum-Backend: canary`` pins every upstream that has a version ``canary``;
``X-Docsum-Backend: ocr=canary,summarizer=stable`` pins each upstream named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..common.errors import BadRequest
from .backends import UPSTREAMS

HEADER = "X-Docsum-Backend"


@dataclass(frozen=True)
class Pins:
    """A version for every upstream (``default``) and/or per upstream (``per``)."""

    default: str | None = None
    per: dict[str, str] = field(default_factory=dict)

    def for_upstream(self, name: str) -> str | None:
        return self.per.get(name, self.default)


NO_PINS = Pins()


def parse_pins(value: str | None) -> Pins:
    """Read the header's value; a malformed one is a 400 saying the accepted forms."""
    if value is None or not value.strip():
        return NO_PINS
    value = value.strip()
    if "=" not in value:
        return Pins(default=value)
    per: dict[str, str] = {}
    for part in value.split(","):
        name, sep, version = (s.strip() for s in part.partition("="))
        if not sep or name not in UPSTREAMS or not version:
            raise BadRequest(
                f"{HEADER}: {value!r} is not '<version>' or "
                f"'<upstream>=<version>[,...]' with upstream in {', '.join(UPSTREAMS)}"
            )
        per[name] = version
    return Pins(per=per)
