"""``make k8s-check``: everything the Kubernetes deploy must show, in one run.

1. The chart's dashboards match ``monitoring/build_dashboards.py``; ``k8s/`` and the chart's
   README match a fresh render of the chart (no drift).
2. Every overlay (dev, prod, local) and every component (on the base) renders with ``kubectl
   kustomize``, and equals the chart rendered with the same features; the chart renders with
   ``helm template`` (its ``helm test`` pod included) for its default values and each
   ``helm/docsum/ci/*-values.yaml`` and passes ``helm lint --strict`` (values.schema.json) with
   each.
3. Every rendered object validates strictly against Kubernetes 1.30 and 1.35
   (kubernetes-validate; a kind with no schema is a failure); Rollout, AnalysisTemplate,
   ServiceMonitor, PrometheusRule, Gateway and HTTPRoute objects validate against their CRD
   schemas (@kubernetes-models validators) and TypeScript's excess-property check (no unknown
   field).
4. ``promtool check rules`` and ``promtool test rules`` (``monitoring/rule-tests/``) on the
   chart's rules file, and every alert has a test.
5. checkov on the rendered manifests and on the chart (skips, each with its reason, in
   ``k8s/checkov.yaml``); hadolint on the Dockerfiles.

Tools come from ``make tools`` (.tools/bin). Exit 1 on any failure, with what failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import k8s_render as kr

ROOT = kr.ROOT
WORK = ROOT / "build" / "k8s-check"
TOOLS = ROOT / ".tools"
K8S_VERSIONS = ("1.30.0", "1.35.0")
CRD_GROUPS = ("argoproj.io", "monitoring.coreos.com", "gateway.networking.k8s.io")
CRD_PACKAGES = {
    "argoproj.io": "@kubernetes-models/argo-rollouts",
    "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
    "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
}
HELM_VALUES = ("default", "gpu", "canary", "prod", "probes", "jobs")
RULES = kr.CHART / "files" / "rules"
RULE_TESTS = ROOT / "monitoring" / "rule-tests"
DASHBOARDS_SPEC = ROOT / "monitoring" / "build_dashboards.py"


class Failed(Exception):
    """A check that did not pass; the message says what to fix."""


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def must(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    proc = run(cmd, cwd)
    if proc.returncode != 0:
        raise Failed(f"{what}:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}")
    return proc.stdout


def normalize(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Objects by (kind, name), merge-keyed lists in a canonical order (kustomize's strategic
    merge keeps their elements, not their order)."""
    return {(o["kind"], o["metadata"]["name"]): kr.canonical(o) for o in objs}


# --- 1. drift --------------------------------------------------------------------------------
def check_drift(_: dict[str, list[dict[str, Any]]]) -> str:
    dashboards = run([sys.executable, str(DASHBOARDS_SPEC), "--check"])
    if dashboards.returncode != 0:
        raise Failed(dashboards.stderr[-6000:] + "(or `make k8s-sync`: it also re-renders k8s/)")
    proc = run([sys.executable, str(ROOT / "scripts" / "k8s_render.py"), "--check"])
    if proc.returncode != 0:
        raise Failed(proc.stderr[-6000:])
    return "dashboards match their spec; " + proc.stdout.strip()


# --- 2. renders ------------------------------------------------------------------------------
def _kustomization(name: str, components: list[str]) -> Path:
    d = WORK / "kustomize" / name
    d.mkdir(parents=True, exist_ok=True)
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(kr.K8S / "base", d)],
        "components": [os.path.relpath(kr.K8S / "components" / c, d) for c in components],
    }
    (d / "kustomization.yaml").write_text(yaml.safe_dump(doc))
    return d


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    ka, kb = normalize(list(a.values())), normalize(list(b.values()))
    out = [f"only in kustomize: {k}" for k in ka.keys() - kb.keys()]
    out += [f"only in helm: {k}" for k in kb.keys() - ka.keys()]
    for k in ka.keys() & kb.keys():
        if ka[k] != kb[k]:
            ops = kr.json_patch(kb[k], ka[k])
            out.append(f"{k} differs (helm → kustomize): {json.dumps(ops)[:600]}")
    return "\n".join(out)


def check_renders(renders: dict[str, list[dict[str, Any]]]) -> str:
    # kustomize: the overlays, each component on the base, and prod's combination
    for overlay in ("dev", "prod", "local"):
        renders[f"kustomize/overlays/{overlay}"] = kr.kustomize(kr.K8S / "overlays" / overlay)
    problems = []
    for feature in kr.FEATURES:
        objs = kr.kustomize(_kustomization(feature, [feature]))
        renders[f"kustomize/base+{feature}"] = objs
        helm = kr.helm_template(kr.values_for([feature]))
        if normalize(objs) != normalize(helm):
            problems.append(
                f"base+{feature}: kustomize ≠ helm\n{_diff(normalize(objs), normalize(helm))}"
            )
    # A combination on the base with its two features: the chart with both.
    for combo, pair in kr.COMBOS.items():
        objs = kr.kustomize(_kustomization(combo, [*pair, combo]))
        renders[f"kustomize/base+{'+'.join(pair)}+{combo}"] = objs
        helm = kr.helm_template(kr.values_for(pair))
        if normalize(objs) != normalize(helm):
            problems.append(
                f"base+{combo}: kustomize ≠ helm\n{_diff(normalize(objs), normalize(helm))}"
            )
    # Hand-written components (not from the chart, e.g. loadgen): rendered and validated too.
    for extra in sorted((kr.K8S / "components").iterdir()):
        if extra.is_dir() and extra.name not in kr.FEATURES and extra.name not in kr.COMBOS:
            renders[f"kustomize/base+{extra.name}"] = kr.kustomize(
                _kustomization(extra.name, [extra.name])
            )
    prod_helm = kr.helm_template(kr.values_for(kr.PROD))
    prod = renders["kustomize/overlays/prod"]
    if normalize(prod) != normalize(prod_helm):
        problems.append(
            f"overlays/prod: kustomize ≠ helm\n{_diff(normalize(prod), normalize(prod_helm))}"
        )
    # helm: default and the ci/ values, lint --strict with each
    helm = kr.tool("helm")
    for name in HELM_VALUES:
        extra = [] if name == "default" else ["-f", str(kr.CHART / "ci" / f"{name}-values.yaml")]
        out = must(
            [helm, "template", kr.RELEASE, str(kr.CHART), "-n", kr.NAMESPACE, *extra],
            f"helm template ({name})",
        )
        renders[f"helm/{name}"] = [d for d in yaml.safe_load_all(out) if d]
        must([helm, "lint", "--strict", str(kr.CHART), *extra], f"helm lint --strict ({name})")
    if problems:
        raise Failed("\n".join(problems))
    n = len(kr.FEATURES) + len(kr.COMBOS)
    return f"{len(renders)} renders, kustomize = helm for {n} components and prod"


# --- 3. schemas ------------------------------------------------------------------------------
def _unique(renders: dict[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    seen: dict[str, tuple[str, dict[str, Any]]] = {}
    for where, objs in renders.items():
        for obj in objs:
            digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()
            seen.setdefault(digest, (where, obj))
    return list(seen.values())


def check_core_schemas(renders: dict[str, list[dict[str, Any]]]) -> str:
    core = [(w, o) for w, o in _unique(renders) if o["apiVersion"].split("/")[0] not in CRD_GROUPS]
    d = WORK / "core"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    files = []
    for i, (where, obj) in enumerate(core):
        path = d / f"{i:03d}-{obj['kind']}-{obj['metadata']['name']}.yaml"
        path.write_text(f"# from {where}\n" + yaml.safe_dump(obj))
        files.append(str(path))
    problems = []
    for version in K8S_VERSIONS:
        proc = run([kr.tool("kubernetes-validate"), "--strict", "-k", version, "--quiet", *files])
        out = (proc.stdout + proc.stderr).strip()
        # A kind without a schema is only a warning to kubernetes-validate; here it fails.
        if proc.returncode != 0 or "ERROR" in out or "Couldn't find schema" in out:
            problems.append(f"Kubernetes {version}:\n{out[-5000:]}")
    if problems:
        raise Failed("\n".join(problems))
    return f"{len(core)} distinct objects valid (strict) for Kubernetes {', '.join(K8S_VERSIONS)}"


def _ts_type(obj: dict[str, Any]) -> tuple[str, str]:
    group, version = obj["apiVersion"].split("/")
    return f"{CRD_PACKAGES[group]}/{group}/{version}/{obj['kind']}", f"I{obj['kind']}"


def check_crd_schemas(renders: dict[str, list[dict[str, Any]]]) -> str:
    crds = [(w, o) for w, o in _unique(renders) if o["apiVersion"].split("/")[0] in CRD_GROUPS]
    node_dir = TOOLS / "crd-validate"
    if not (node_dir / "node_modules").exists():
        raise Failed("CRD validators missing: run `make tools`")
    work = node_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    shutil.copy(ROOT / "tests" / "k8s" / "crd-schemas" / "validate.mjs", node_dir / "validate.mjs")
    (work / "objects.json").write_text(json.dumps([o for _, o in crds]))
    proc = run(["node", str(node_dir / "validate.mjs"), str(work / "objects.json")])
    problems = []
    if proc.returncode != 0:
        bad = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
        problems.append("\n".join(bad) or proc.stderr[-3000:])
    # Excess properties: assign each object to its TypeScript interface; tsc reports unknown
    # fields (the JSON-schema validators above accept them).
    lines, imports = [], {}
    for i, (where, obj) in enumerate(crds):
        module, iface = _ts_type(obj)
        alias = imports.setdefault((module, iface), f"T{len(imports)}")
        lines.append(f"// {where}: {obj['kind']}/{obj['metadata']['name']}")
        lines.append(f"export const o{i}: {alias} = {json.dumps(obj)};")
    head = [f'import type {{ {iface} as {a} }} from "{m}";' for (m, iface), a in imports.items()]
    (work / "objects.ts").write_text("\n".join(head + lines) + "\n")
    (work / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "module": "nodenext",
                    "moduleResolution": "nodenext",
                    "target": "es2022",
                    "skipLibCheck": True,
                    "types": [],
                },
                "files": ["objects.ts"],
            }
        )
    )
    tsc = run(
        ["node", str(node_dir / "node_modules" / "typescript" / "bin" / "tsc"), "-p", str(work)]
    )
    if tsc.returncode != 0:
        src = (work / "objects.ts").read_text().splitlines()
        msgs = []
        for m in re.finditer(r"objects\.ts\((\d+),\d+\): (error .*)", tsc.stdout):
            line = int(m.group(1))
            msgs.append(f"{src[line - 2][3:]}: {m.group(2)}")
        problems.append("unknown or mistyped fields:\n" + "\n".join(msgs or [tsc.stdout[-3000:]]))
    if problems:
        raise Failed("\n".join(problems))
    kinds = sorted({o["kind"] for _, o in crds})
    return f"{len(crds)} distinct custom resources valid ({', '.join(kinds)})"


# --- 4. promtool -----------------------------------------------------------------------------
def check_rules(_: dict[str, list[dict[str, Any]]]) -> str:
    promtool = kr.tool("promtool")
    rules = sorted(RULES.glob("*.yml"))
    tests = sorted(RULE_TESTS.glob("*.yml"))
    must([promtool, "check", "rules", *map(str, rules)], "promtool check rules")
    if not tests:
        raise Failed(f"{RULE_TESTS.relative_to(ROOT)}/ has no promtool tests")
    must([promtool, "test", "rules", *map(str, tests)], "promtool test rules", cwd=ROOT)
    alerts = {
        r["alert"]
        for f in rules
        for g in (yaml.safe_load(f.read_text()) or {}).get("groups", [])
        for r in g.get("rules", [])
        if "alert" in r
    }
    tested = set()
    for f in tests:
        for t in (yaml.safe_load(f.read_text()) or {}).get("tests", []):
            tested |= {a["alertname"] for a in t.get("alert_rule_test", [])}
    if alerts - tested:
        raise Failed(f"alerts without a promtool test: {sorted(alerts - tested)}")
    return f"{len(alerts)} alerts, each tested ({len(tests)} test files)"


# --- 5. checkov, hadolint ----------------------------------------------------------------------
#: Checks skipped on the chart scan only (beyond k8s/checkov.yaml's), each with its reason.
HELM_SCAN_SKIPS = {
    # checkov renders the chart without a namespace (helm's "default"); every object uses
    # .Release.Namespace, and the rendered manifests (namespace docsum) are checked with it on.
    "CKV_K8S_21": "default namespace",
}


def _checkov(args: list[str], what: str, extra_skips: Iterable[str] = ()) -> int:
    cfg = kr.K8S / "checkov.yaml"
    skips = [*(yaml.safe_load(cfg.read_text()) or {}).get("skip-check", []), *extra_skips]
    cmd = [kr.tool("checkov"), "--skip-download", "--quiet", "--compact", "-o", "json"]
    if skips:
        cmd += ["--skip-check", ",".join(skips)]
    proc = run([*cmd, *args])
    try:
        reports = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise Failed(
            f"checkov ({what}) gave no report:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        ) from exc
    reports = reports if isinstance(reports, list) else [reports]
    # checkov prints an empty report when a framework cannot run (helm missing): not a pass.
    if not sum(r.get("summary", {}).get("resource_count", 0) for r in reports):
        raise Failed(f"checkov ({what}) checked no resource:\n{proc.stderr[-2000:]}")
    failed = [
        f"{c['check_id']} {c['check_name']} — {c.get('resource')} ({c.get('file_path')})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    if failed:
        raise Failed(f"checkov ({what}): {len(failed)} failed\n" + "\n".join(sorted(set(failed))))
    return sum(r.get("summary", {}).get("passed", 0) for r in reports)


#: Renders scanned with extra skips: what they are for is what the check forbids.
RENDER_SKIPS = {
    "kustomize/overlays/local": {
        # podman kube play on one host: the gateway's port is published on the host (no Service).
        "CKV_K8S_26": "hostPort",
    },
}


def check_checkov(renders: dict[str, list[dict[str, Any]]]) -> str:
    d = WORK / "rendered"
    shutil.rmtree(d, ignore_errors=True)
    (d / "common").mkdir(parents=True)
    passed = 0
    for name, objs in renders.items():
        file = re.sub(r"[/+]", "_", name) + ".yaml"
        path = d / file if name in RENDER_SKIPS else d / "common" / file
        path.write_text(kr.dump_all(objs))
        if name in RENDER_SKIPS:
            args = ["--framework", "kubernetes", "-f", str(path)]
            passed += _checkov(args, name, RENDER_SKIPS[name])
    passed += _checkov(["--framework", "kubernetes", "-d", str(d / "common")], "rendered manifests")
    passed += _checkov(
        [
            "--framework",
            "helm",
            "-d",
            str(kr.CHART),
            "--var-file",
            str(kr.CHART / "ci" / "prod-values.yaml"),
        ],
        "helm chart",
        HELM_SCAN_SKIPS,
    )
    return f"0 failed, {passed} passed"


def check_hadolint(_: dict[str, list[dict[str, Any]]]) -> str:
    files = [*sorted((ROOT / "services").glob("*/Dockerfile")), ROOT / "loadtests" / "Dockerfile"]
    if not files:
        raise Failed("no services/*/Dockerfile")
    must(
        [kr.tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), *map(str, files)],
        "hadolint",
    )
    return f"{len(files)} Dockerfiles clean"


STEPS: list[tuple[str, Callable[[dict[str, list[dict[str, Any]]]], str]]] = [
    ("drift", check_drift),
    ("render", check_renders),
    ("schemas", check_core_schemas),
    ("crds", check_crd_schemas),
    ("promtool", check_rules),
    ("hadolint", check_hadolint),
    ("checkov", check_checkov),
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="make k8s-check")
    p.add_argument("--skip", action="append", default=[], choices=[s for s, _ in STEPS])
    args = p.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    # checkov's helm framework runs `helm` from PATH: the one from .tools/bin.
    os.environ["PATH"] = f"{kr.TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    renders: dict[str, list[dict[str, Any]]] = {}
    failures = 0
    for name, step in STEPS:
        if name in args.skip:
            continue
        start = time.monotonic()
        try:
            msg = step(renders)
            status = "ok  "
        except (Failed, RuntimeError) as exc:
            msg, status = str(exc), "FAIL"
            failures += 1
        sys.stdout.write(f"k8s-check {status} {name:<9} {time.monotonic() - start:5.1f}s  {msg}\n")
        sys.stdout.flush()
        if name == "render" and status == "FAIL":
            break  # nothing to validate
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
