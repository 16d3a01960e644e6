# Sourced by the install_*.sh scripts that take a tool from Debian's packages without root:
# apt-get download, then dpkg-deb -x — no service installed, nothing changed on the system.

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
