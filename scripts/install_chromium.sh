#!/usr/bin/env bash
# Headless Chromium for the browser check of the gateway's /docs page (tests/e2e/test_docs_ui.py):
# Debian's `chromium` package, installed with apt-get (root, or sudo), no recommends.
# Idempotent: a second run checks `chromium --version` answers and does nothing else.
# Prints the binary's path; tests find it on PATH or through DOCSUM_CHROMIUM.
set -euo pipefail

if chromium --version >/dev/null 2>&1; then
  echo "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null))"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || {
  echo "install_chromium: apt-get not found; install Chromium and set DOCSUM_CHROMIUM to its path" >&2
  exit 1
}
SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "install_chromium: needs root (or sudo) for apt-get" >&2; exit 1; }
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
APT=("${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 -q)
# apt lists may be missing (fresh CI image) or stale (the candidate's file gone from the mirror).
if ! "${APT[@]}" install -y --no-install-recommends chromium >/dev/null; then
  "${APT[@]}" update -qq
  "${APT[@]}" install -y --no-install-recommends chromium >/dev/null
fi
chromium --version >/dev/null 2>&1 || { echo "install_chromium: chromium installed but does not run" >&2; exit 1; }
echo "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null))"
