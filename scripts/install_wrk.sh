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
if [ -x "$BIN" ] && "$BIN" --version 2>&1 | grep -q '^wrk'; then
    echo "wrk: $BIN"; exit 0
fi
command -v apt-get >/dev/null || { echo "apt-get is needed to fetch wrk" >&2; exit 1; }
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"
pkgs=(wrk)
for lib in libluajit-5.1-2 libluajit-5.1-common; do
    so=$(dpkg -L "$lib" 2>/dev/null | grep -m1 '\.so\.' || true)
    [ -n "$so" ] && [ -e "$so" ] || pkgs+=("$lib")
done
echo "wrk: downloading ${pkgs[*]}"
apt-get download "${pkgs[@]}" >/dev/null 2>&1 || apt-get download "${pkgs[@]}"
rm -rf "$DEST"; mkdir -p "$DEST/bin"
for deb in ./*.deb; do dpkg-deb -x "$deb" "$DEST/root"; done
cat > "$BIN" <<WRAP
#!/bin/sh
export LD_LIBRARY_PATH="$DEST/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$DEST/root/usr/bin/wrk" "\$@"
WRAP
chmod +x "$BIN"
"$BIN" --version 2>&1 | head -1
echo "wrk: $BIN"
