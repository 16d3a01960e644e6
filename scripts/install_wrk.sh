#!/usr/bin/env bash
# wrk (the HTTP load generator of `make bench`'s gateway throughput figure) from Debian's
# package, unpacked into .tools/wrk without root: apt-get download + dpkg-deb -x. Written in C,
# it costs half the CPU per request of a Python client: on a small machine the figure measures
# the servers more than the client. bin/wrk is a wrapper that points the loader at the unpacked LuaJIT.
# Idempotent: a second run does nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/.tools/wrk"
BIN="$DEST/bin/wrk"
# `wrk --version` prints its banner and usage, then exits 1.
version() { "$BIN" --version 2>&1 | head -1 || true; }
if [ -x "$BIN" ] && [[ "$(version)" == wrk* ]]; then
    echo "wrk: $BIN"; exit 0
fi
source "$ROOT/scripts/apt_unpack.sh"
mapfile -t libs < <(missing_libs libluajit-5.1-2 libluajit-5.1-common)
unpack_debs "$DEST" wrk "${libs[@]}"
cat > "$BIN" <<WRAP
#!/bin/sh
export LD_LIBRARY_PATH="$DEST/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$DEST/root/usr/bin/wrk" "\$@"
WRAP
chmod +x "$BIN"
[[ "$(version)" == wrk* ]] || { echo "wrk does not run: $(version)" >&2; exit 1; }
echo "wrk: $BIN"
