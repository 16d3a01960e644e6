#!/usr/bin/env bash
# Tesseract 5.3 (the OCR peer of `make bench` / `docsum eval ocr-*`) from Debian's packages,
# unpacked into .tools/tesseract without root: apt-get download + dpkg-deb -x, no service, no
# system change. Libraries the system lacks are unpacked beside it; bin/tesseract is a wrapper
# that points the loader and TESSDATA_PREFIX there. Idempotent: a second run does nothing.
# Usage: scripts/install_tesseract.sh [DEST]      (default .tools/tesseract)
set -euo pipefail
# shellcheck source=apt_unpack.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/apt_unpack.sh"
installed() { [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; }
apt_tool tesseract tesseract "$@"
# Shared libraries Tesseract links that a slim system may lack are unpacked beside it.
mapfile -t libs < <(missing_libs libwebpmux3 libopenjp2-7 libarchive13 libgif7 libwebp7 libtiff6 libgomp1 libcurl4)
unpack_debs "$DEST" tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd libtesseract5 liblept5 "${libs[@]}"
tessdata=$(dirname "$(find "$DEST/root" -name eng.traineddata | head -1)")
wrap tesseract "export TESSDATA_PREFIX=\"$tessdata\""
"$BIN" --version | head -1
echo "tesseract: $BIN"
