"""The edge waits as long as the gateway: the HTTPRoute's timeouts follow the gateway's own
deadline (one value), so a long document gets the gateway's answer, not the edge's 504."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import k8s_render as kr

if not (kr.TOOLS_BIN / "helm").exists():
    pytest.skip("helm not installed: run `make tools`", allow_module_level=True)


def route_and_deadline(**gateway_settings: str) -> tuple[dict[str, Any], float]:
    values = kr.values_for(["ingress"], {"gateway": {"settings": gateway_settings}})
    objs = kr.helm_template(values)
    [route] = [o for o in objs if o["kind"] == "HTTPRoute"]
    [cm] = [
        o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "docsum-gateway"
    ]
    return route, float(cm["data"]["DOCSUM_GATEWAY_REQUEST_TIMEOUT_S"])


@pytest.mark.parametrize("deadline", [None, "300", "45.5"])
def test_route_timeouts_follow_the_gateways_deadline(deadline: str | None) -> None:
    route, seconds = route_and_deadline(**({"REQUEST_TIMEOUT_S": deadline} if deadline else {}))
    if deadline:
        assert seconds == float(deadline)
    for rule in route["spec"]["rules"]:
        timeouts = rule["timeouts"]
        for key in ("request", "backendRequest"):
            edge = int(timeouts[key].removesuffix("s"))
            # longer than the gateway's deadline (its 504 comes first), by the margin only
            assert seconds < edge <= seconds + 6, (key, edge, seconds)
