#!/bin/sh
# The build stage's venv in services/*/Dockerfile, at $VIRTUAL_ENV (the Dockerfile's ENV): made
# with the base image's python3, or with Debian/Ubuntu's when the base lacks it (the CUDA runtime
# image has none). Given TORCH_REQUIREMENT, torch is installed into it first and pinned, so the
# extras' resolver cannot pick another build; the PIP OPTIONS say where pip finds it.
# Usage (a RUN of the Dockerfile): sh python_venv.sh [TORCH_REQUIREMENT [PIP OPTIONS...]]
set -eu
venv="${VIRTUAL_ENV:?set VIRTUAL_ENV (the Dockerfile ENV) to the venv folder}"
if ! python3 -m venv "$venv" 2>/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv
    rm -rf /var/lib/apt/lists/*
    python3 -m venv "$venv"
fi
if [ "$#" -gt 0 ]; then
    requirement="$1"
    shift
    "$venv/bin/pip" install "$@" "$requirement"
fi
