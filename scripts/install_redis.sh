#!/usr/bin/env bash
# Redis 7.0 (the async jobs' queue and store, issue 17) from Debian's packages, unpacked into
# .tools/redis without root: apt-get download + dpkg-deb -x, no service, no system change.
# Libraries the system lacks (jemalloc, lzf) are unpacked beside it; bin/redis-server and
# bin/redis-cli are wrappers that point the loader there. Idempotent: a second run does nothing.
# Usage: scripts/install_redis.sh [DEST]      (default .tools/redis)
set -euo pipefail
# shellcheck source=apt_unpack.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/apt_unpack.sh"
installed() { [ -f "$DEST/.installed" ] && "$BIN" --version >/dev/null 2>&1; }
apt_tool redis redis-server "$@"
mapfile -t libs < <(missing_libs libjemalloc2 liblzf1 libssl3 libatomic1 libsystemd0)
unpack_debs "$DEST" redis-server redis-tools "${libs[@]}"
wrap redis-server
wrap redis-cli
"$BIN" --version
touch "$DEST/.installed"
echo "redis: $BIN"
