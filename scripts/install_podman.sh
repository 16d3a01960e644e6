#!/usr/bin/env bash
# The container engine of `make images` / `make e2e`: podman, buildah, mmdebstrap and runc from
# Debian's packages (apt-get: root, or sudo), and the engine settings this project's scripts
# use, written to .tools/containers/containers.conf (named by CONTAINERS_CONF; nothing
# system-wide changes):
#   - no default ulimits: a container may not raise RLIMIT_NOFILE/NPROC in some sandboxes;
#   - runc with cgroupfs: crun refuses cgroups in hybrid mode, and no systemd runs here;
#   - events to a file: there is no journald/syslog to write them to.
# A machine whose Docker engine answers and has no podman is left alone (make images uses it).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for cmd in podman buildah mmdebstrap runc; do
  command -v "$cmd" >/dev/null || missing+=("$cmd")
done
if ((${#missing[@]})); then
  if ! command -v podman >/dev/null && docker info >/dev/null 2>&1; then
    echo "install_podman: using the running Docker engine (podman not installed)"
    exit 0
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install_podman: installing podman buildah mmdebstrap runc (missing: ${missing[*]})"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    podman buildah mmdebstrap runc netavark aardvark-dns uidmap >/dev/null
fi

mkdir -p .tools/containers
cat > .tools/containers/containers.conf <<'CONF'
# Written by scripts/install_podman.sh; used through CONTAINERS_CONF (see the Makefile).
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
podman --version
