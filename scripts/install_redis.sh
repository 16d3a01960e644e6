#!/usr/bin/env bash
# Redis 7.0 (the async jobs' queue and store, issue 17) from Debian's packages, unpacked into
# .tools/redis without root: apt-get download + dpkg-deb -x, no service, no system change.
# Libraries the system lacks (jemalloc, lzf) are unpacked beside it; bin/redis-server and
# bin/redis-cli are wrappers that point the loader there. Idempotent: a second run does nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/.tools/redis"
STAMP="$DEST/.installed"
if [ -f "$STAMP" ] && "$DEST/bin/redis-server" --version >/dev/null 2>&1; then
    echo "redis: $DEST/bin/redis-server"; exit 0
fi
source "$ROOT/scripts/apt_unpack.sh"
mapfile -t libs < <(missing_libs libjemalloc2 liblzf1 libssl3 libatomic1 libsystemd0)
unpack_debs "$DEST" redis-server redis-tools "${libs[@]}"
for tool in redis-server redis-cli; do
    cat > "$DEST/bin/$tool" <<WRAP
#!/bin/sh
export LD_LIBRARY_PATH="$DEST/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$DEST/root/usr/bin/$tool" "\$@"
WRAP
    chmod +x "$DEST/bin/$tool"
done
"$DEST/bin/redis-server" --version
touch "$STAMP"
echo "redis: $DEST/bin/redis-server"
