"""values.schema.json: a mistyped key or a wrong type fails `helm lint --strict` and `helm
template` with the value's path, instead of rendering as if the value were not given."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import k8s_render as kr

if not (kr.TOOLS_BIN / "helm").exists():
    pytest.skip("helm not installed: run `make tools`", allow_module_level=True)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kr.tool("helm"), *args], capture_output=True, text=True, check=False, timeout=120
    )


BAD = [
    # (a --set a user could type, what the error must name)
    (["--set", "ocr.gpu.enabeld=true"], "enabeld"),
    (["--set", "monitring.enabled=true"], "monitring"),
    (["--set", "ocr.replicas=two"], "/ocr/replicas"),
    (["--set-string", "gateway.port=8080"], "/gateway/port"),
    (["--set", "gateway.blueGreen.activeSlot=purple"], "/gateway/blueGreen/activeSlot"),
    (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    (["--set", "summarizer.resources.limits.memory=3 GB"], "/summarizer/resources/limits"),
    (["--set", "ocr.canary.weight=150"], "/ocr/canary/weight"),
    (["--set", "canaryGate.window=2 minutes"], "/canaryGate/window"),
    (["--set", "summarizer.settings.LOG.LEVEL=DEBUG"], "/summarizer/settings/LOG"),
]


@pytest.mark.parametrize(("args", "named"), BAD, ids=[a[1] for a, _ in BAD])
def test_lint_strict_and_template_reject_a_mistyped_value(args: list[str], named: str) -> None:
    lint = helm("lint", "--strict", str(kr.CHART), *args)
    assert lint.returncode != 0, f"helm lint --strict accepted {args}"
    assert named in lint.stdout + lint.stderr
    template = helm("template", "t", str(kr.CHART), *args)
    assert template.returncode != 0, f"helm template accepted {args}"
    assert named in template.stderr


def test_the_defaults_and_every_ci_values_file_pass_lint_strict() -> None:
    files = sorted((kr.CHART / "ci").glob("*-values.yaml"))
    assert files
    for extra in [[], *(["-f", str(f)] for f in files)]:
        lint = helm("lint", "--strict", str(kr.CHART), *extra)
        assert lint.returncode == 0, lint.stdout + lint.stderr
