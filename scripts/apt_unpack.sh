# shellcheck shell=bash
# Sourced by the install_*.sh scripts that take a tool from Debian's packages without root:
# apt-get download, then dpkg-deb -x — no service installed, nothing changed on the system.

# apt_tool NAME BINARY [DEST]: set ROOT (the repository), DEST (default .tools/NAME) and BIN
# ($DEST/bin/BINARY); when the script's own `installed` check passes, print "NAME: BIN" and
# exit 0, so a second run does nothing.
apt_tool() {
    ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    DEST="${3:-$ROOT/.tools/$1}"
    BIN="$DEST/bin/$2"
    if installed; then
        echo "$1: $BIN"
        exit 0
    fi
}

# missing_libs PKG...: the packages among PKG whose shared library this system lacks.
missing_libs() {
    local lib so
    for lib in "$@"; do
        so=$(dpkg -L "$lib" 2>/dev/null | grep -m1 '\.so\.' || true)
        [ -n "$so" ] && [ -e "$so" ] || echo "$lib"
    done
}

# unpack_debs DEST PKG...: download PKG... and unpack them all into DEST/root (DEST is replaced).
unpack_debs() {
    local dest="$1" work deb
    shift
    command -v apt-get >/dev/null || { echo "apt-get is needed to fetch $1" >&2; return 1; }
    work="$(mktemp -d)"
    echo "downloading $*"
    (cd "$work" && { apt-get download "$@" >/dev/null 2>&1 || apt-get download "$@"; })
    rm -rf "$dest"; mkdir -p "$dest/bin"
    for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$dest/root"; done
    rm -rf "$work"
}

# wrap TOOL [LINE...]: write $DEST/bin/TOOL, a wrapper that runs the unpacked usr/bin/TOOL with
# the libraries unpacked beside it on the loader's path, after LINE... (more exports).
wrap() {
    local tool="$1" line
    shift
    {
        echo '#!/bin/sh'
        echo "export LD_LIBRARY_PATH=\"$DEST/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
        for line in "$@"; do echo "$line"; done
        echo "exec \"$DEST/root/usr/bin/$tool\" \"\$@\""
    } > "$DEST/bin/$tool"
    chmod +x "$DEST/bin/$tool"
}
