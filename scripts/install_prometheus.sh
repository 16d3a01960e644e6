#!/usr/bin/env bash
# Install Prometheus and promtool from Debian's `prometheus` package into .tools/prometheus/,
# without root, without starting any service:
#   apt-get download prometheus <its web-UI packages>
#   dpkg-deb -x <each deb> .tools/prometheus/deb
# and exposes .tools/prometheus/bin/prometheus, .tools/prometheus/bin/promtool and the web UI's
# assets in .tools/prometheus/web (pass --web.local-assets=.tools/prometheus/web to the server;
# the UI is at /classic/graph). Both binaries are Go, linked to libc alone: no library is needed.
# The package's other Depends are the JavaScript and font packages of that UI, unpacked beside it
# (their symlinks are relative, so they resolve inside deb/).
# Idempotent: a second run checks the binaries answer --version and does nothing else.
# Needs apt lists; on a fresh CI image without them it runs `apt-get update` when it is root.
# Usage: scripts/install_prometheus.sh [DEST]      (default .tools/prometheus; env
#        PROMETHEUS_DEB_VERSION pins a package version, e.g. 2.42.0+ds-5+deb12u1)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/.tools/prometheus}"
PKG="prometheus${PROMETHEUS_DEB_VERSION:+=$PROMETHEUS_DEB_VERSION}"
UI_PKGS=(
  libjs-jquery libjs-jquery-hotkeys libjs-bootstrap4 libjs-popper.js libjs-moment
  libjs-moment-timezone libjs-eonasdan-bootstrap-datetimepicker libjs-mustache libjs-rickshaw
  libjs-d3 fonts-glyphicons-halflings
)

installed() {
  [[ -x "$DEST/bin/prometheus" && -x "$DEST/bin/promtool" ]] \
    && "$DEST/bin/promtool" --version >/dev/null 2>&1 \
    && "$DEST/bin/prometheus" --version >/dev/null 2>&1 \
    && [[ -f "$DEST/web/static/jquery/jquery.min.js" ]]
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
if ! (cd "$work" && apt-get download -q "$PKG" "${UI_PKGS[@]}" >/dev/null 2>&1); then
  if [[ "$(id -u)" == 0 ]]; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    (cd "$work" && apt-get download -q "$PKG" "${UI_PKGS[@]}" >/dev/null)
  else
    echo "install_prometheus: 'apt-get download $PKG ...' failed; run 'sudo apt-get update' once" >&2
    exit 1
  fi
fi

deb="$(ls "$work"/prometheus_*.deb)"
rm -rf "$DEST/deb" "$DEST/bin" "$DEST/web"
mkdir -p "$DEST/deb" "$DEST/bin"
for d in "$work"/*.deb; do
  dpkg-deb -x "$d" "$DEST/deb"
done
ln -s ../deb/usr/bin/prometheus "$DEST/bin/prometheus"
ln -s ../deb/usr/bin/promtool "$DEST/bin/promtool"
ln -s deb/usr/share/prometheus/web "$DEST/web"

if ! installed; then
  echo "install_prometheus: unpacked $deb but the binaries do not run" >&2
  exit 1
fi
echo "install_prometheus: $("$DEST/bin/promtool" --version 2>&1 | head -n1) in $DEST/bin"
