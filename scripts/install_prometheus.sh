#!/usr/bin/env bash
# Install Prometheus and promtool from Debian's `prometheus` package into .tools/prometheus/,
# without root, without starting any service:
#   apt-get download prometheus      (the .deb only; its Depends are web-UI JavaScript packages,
#                                     not libraries: both binaries are Go, linked to libc alone)
#   dpkg-deb -x <deb> .tools/prometheus/deb
# and exposes .tools/prometheus/bin/prometheus and .tools/prometheus/bin/promtool.
# Idempotent: a second run checks the binaries answer --version and does nothing else.
# Needs apt lists; on a fresh CI image without them it runs `apt-get update` when it is root.
# Usage: scripts/install_prometheus.sh [DEST]      (default .tools/prometheus; env
#        PROMETHEUS_DEB_VERSION pins a package version, e.g. 2.42.0+ds-5+deb12u1)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/.tools/prometheus}"
PKG="prometheus${PROMETHEUS_DEB_VERSION:+=$PROMETHEUS_DEB_VERSION}"

installed() {
  [[ -x "$DEST/bin/prometheus" && -x "$DEST/bin/promtool" ]] \
    && "$DEST/bin/promtool" --version >/dev/null 2>&1 \
    && "$DEST/bin/prometheus" --version >/dev/null 2>&1
}

if installed; then
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || {
  echo "install_prometheus: apt-get not found; this script needs a Debian/Ubuntu host" >&2
  exit 1
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# apt-get download writes into the current directory; as root it warns that the _apt user
# cannot write a mktemp folder — harmless, the download runs unsandboxed.
if ! (cd "$work" && apt-get download -q "$PKG" >/dev/null 2>&1); then
  if [[ "$(id -u)" == 0 ]]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    (cd "$work" && apt-get download -q "$PKG" >/dev/null)
  else
    echo "install_prometheus: 'apt-get download $PKG' failed; run 'sudo apt-get update' once" >&2
    exit 1
  fi
fi

deb="$(ls "$work"/prometheus_*.deb)"
rm -rf "$DEST/deb" "$DEST/bin"
mkdir -p "$DEST/deb" "$DEST/bin"
dpkg-deb -x "$deb" "$DEST/deb"
ln -s ../deb/usr/bin/prometheus "$DEST/bin/prometheus"
ln -s ../deb/usr/bin/promtool "$DEST/bin/promtool"

if ! installed; then
  echo "install_prometheus: unpacked $deb but the binaries do not run" >&2
  exit 1
fi
echo "install_prometheus: $("$DEST/bin/promtool" --version 2>&1 | head -n1) in $DEST/bin"
