#!/usr/bin/env bash
# RapidOCR (the second OCR peer of `make bench`) into .tools/rapidocr-venv, from PyPI only,
# pinned by scripts/rapidocr-requirements.txt. A venv of its own: its onnxruntime, numpy and
# OpenCV need not agree with the project's. Idempotent: skipped while a stamp matches the pins.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python3}
VENV="$ROOT/.tools/rapidocr-venv"
REQ="$ROOT/scripts/rapidocr-requirements.txt"
STAMP="$VENV/.installed"
want=$(sha256sum < "$REQ" | cut -c1-16)
if [[ -x $VENV/bin/python && -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
    echo "rapidocr: $VENV"; exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
# --no-deps: the requirements file is the whole closure, so nothing unpinned comes in.
"$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps -r "$REQ" \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
# The recognizer and detector must be inside the wheel: fail here, not at run time.
"$VENV/bin/python" - <<'PY'
from pathlib import Path
import rapidocr_onnxruntime as r
models = sorted(p.name for p in (Path(r.__file__).parent / "models").glob("*.onnx"))
assert any("rec" in m for m in models) and any("det" in m for m in models), models
print("rapidocr models:", ", ".join(models))
PY
echo "$want" > "$STAMP"
echo "rapidocr: $VENV"
