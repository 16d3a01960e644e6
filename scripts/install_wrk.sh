#!/usr/bin/env bash
# wrk (the HTTP load generator of `make bench`'s gateway throughput figure) from Debian's
# package, unpacked into .tools/wrk without root: apt-get download + dpkg-deb -x. Written in C,
# it costs half the CPU per request of a Python client: on a small machine the figure measures
# the servers more than the client. bin/wrk is a wrapper that points the loader at the unpacked LuaJIT.
# Idempotent: a second run does nothing.
# Usage: scripts/install_wrk.sh [DEST]      (default .tools/wrk)
set -euo pipefail
# shellcheck source=apt_unpack.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/apt_unpack.sh"
# `wrk --version` prints its banner and usage, then exits 1.
version() { "$BIN" --version 2>&1 | head -1 || true; }
installed() { [ -x "$BIN" ] && [[ "$(version)" == wrk* ]]; }
apt_tool wrk wrk "$@"
mapfile -t libs < <(missing_libs libluajit-5.1-2 libluajit-5.1-common)
unpack_debs "$DEST" wrk "${libs[@]}"
wrap wrk
[[ "$(version)" == wrk* ]] || { echo "wrk does not run: $(version)" >&2; exit 1; }
echo "wrk: $BIN"
