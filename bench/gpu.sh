#!/usr/bin/env bash
# The GPU run, from nothing: installs what it needs (Debian's python3-venv if missing; torch
# with CUDA and the project's ocr + summarizer extras from PyPI), then bench/gpu_bench.py:
# CUDA outputs checked against the CPU's, lines/s, pages/s and articles/s at batch 1/16/256,
# real servers at 1 vs 16 concurrent clients. Everything lands in one file, $OUT/gpu.json
# (OUT defaults to ./out). Run from the repository root of a copy of the working tree:
#
#   bash bench/gpu.sh                      # CUDA, full sizes (about 3 min after the install)
#   bash bench/gpu.sh --device cpu --quick # smoke run on a CPU (tests/bench/test_gpu_script.py)
#
# Arguments go to bench/gpu_bench.py. Environment:
#   DOCSUM_GPU_SH_VENV=path    use this venv as it is; nothing is installed
#   DOCSUM_GPU_SH_WHEELS=dir   install from these wheels only (no index): a machine offline
#   DOCSUM_GPU_SH_SYSTEM_TORCH=1  keep the torch the system Python already has (a CUDA image)
# Exit status: gpu_bench's (1 when the CUDA outputs do not match the CPU's).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export OUT=${OUT:-$ROOT/out}
mkdir -p "$OUT"
TORCH_VERSION=2.13.0
started=$SECONDS
say() { printf 'gpu.sh: %s\n' "$*" >&2; }

if [[ -n ${DOCSUM_GPU_SH_VENV:-} ]]; then
    PY=$DOCSUM_GPU_SH_VENV/bin/python
else
    VENV=$ROOT/.tools/gpu-venv
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        say "python3-venv from Debian"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
    fi
    site=()
    [[ ${DOCSUM_GPU_SH_SYSTEM_TORCH:-0} == 1 ]] && site=(--system-site-packages)
    python3 -m venv "${site[@]}" "$VENV"
    PY=$VENV/bin/python
    pip=("$PY" -m pip install -q --disable-pip-version-check --no-compile --progress-bar off)
    [[ -n ${DOCSUM_GPU_SH_WHEELS:-} ]] && pip+=(--no-index --find-links "$DOCSUM_GPU_SH_WHEELS")
    if [[ ${DOCSUM_GPU_SH_SYSTEM_TORCH:-0} == 1 ]]; then
        # The image's torch stays: the project without its torch pin, its other needs by name.
        say "project on the system torch $("$PY" -c 'import torch; print(torch.__version__)')"
        mapfile -t needs < <("$PY" - <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
for req in project["dependencies"] + extras["ocr"] + extras["summarizer"]:
    if not req.startswith("torch"):
        print(req)
PY
        )
        "${pip[@]}" "${needs[@]}" rapidfuzz
        # The build backend from the system too: an offline machine has no index to build with.
        "${pip[@]}" --no-deps --no-build-isolation -e .
    else
        say "torch $TORCH_VERSION (CUDA) and docsum[ocr,summarizer] from PyPI"
        "${pip[@]}" "torch==$TORCH_VERSION"
        "${pip[@]}" -e ".[ocr,summarizer]" rapidfuzz
    fi
    say "installed in $((SECONDS - started)) s"
fi

"$PY" -c 'import torch; print(f"gpu.sh: torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")' >&2
status=0
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 \
    "$PY" -m bench.gpu_bench --out "$OUT/gpu.json" "$@" || status=$?
say "done in $((SECONDS - started)) s (exit $status): $OUT/gpu.json"
exit $status
