#!/usr/bin/env bash
# Install the fonts the OCR synthetic-line generator renders with (docsum.ocr.train.fonts).
#
# Three sources, all package registries:
#   1. Debian packages (needs root + apt-get; skipped with a note otherwise), into /usr/share/fonts.
#   2. PyPI `fontpkg-*` wheels, downloaded with pip (--no-deps, nothing is installed into any
#      environment) and unpacked into $FONT_DIR/fontpkg/<package>/ (default .tools/fonts).
#   3. npm `@fontsource/*` tarballs (pinned version, fetched from registry.npmjs.org with curl):
#      their Latin-subset WOFF files, weights 400-900, into $FONT_DIR/fontsource/<name>/. They
#      bring what the other two lack: type cut from early printing (IM Fell, Caslon, Goudy) and
#      receipt/terminal faces (dot-matrix, pixel, typewriter, condensed till-roll fonts).
# Idempotent: apt skips what is installed, packages already unpacked are not fetched again.
# Usage: scripts/install_fonts.sh [FONT_DIR]     (env PYTHON picks the interpreter that runs pip)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FONT_DIR="${1:-${DOCSUM_FONT_DIR:-$ROOT/.tools/fonts}}"
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

# Serif / sans / mono / typewriter / old-style families with Latin coverage. Computer Modern
# (lmodern, cmu) matters: much of printed scientific English was typeset with it.
APT_FONTS=(
  fonts-dejavu fonts-dejavu-extra fonts-liberation fonts-liberation2 fonts-freefont-ttf
  fonts-urw-base35 fonts-crosextra-carlito fonts-crosextra-caladea fonts-linuxlibertine
  fonts-texgyre fonts-courier-prime fonts-ebgaramond fonts-ebgaramond-extra fonts-cantarell
  fonts-roboto-unhinted fonts-lmodern fonts-cmu fonts-stix fonts-junicode fonts-oldstandard
  fonts-sil-gentiumplus fonts-sil-charis fonts-go fonts-hack fonts-inconsolata
  fonts-adf-accanthis fonts-adf-baskervald fonts-adf-gillius fonts-adf-universalis
  fonts-adf-berenis fonts-adf-libris fonts-adf-oldania fonts-adf-tribun fonts-adf-verana
  fonts-adf-romande fonts-adf-switzera ttf-bitstream-vera fonts-vollkorn fonts-cardo fonts-lato
  fonts-open-sans fonts-anonymous-pro fonts-quattrocento fonts-paratype fonts-prociono
  fonts-jetbrains-mono fonts-firacode
)

PIP_FONTS=(
  fontpkg-eb-garamond fontpkg-crimson-text fontpkg-crimson-pro fontpkg-libre-baskerville
  fontpkg-ibm-plex-mono fontpkg-ibm-plex-serif fontpkg-ibm-plex-sans fontpkg-ibm-plex-sans-condensed
  fontpkg-pt-serif fontpkg-pt-sans fontpkg-pt-sans-narrow fontpkg-merriweather
  fontpkg-merriweather-sans fontpkg-source-serif-4 fontpkg-source-sans-3 fontpkg-source-code-pro
  fontpkg-archivo-narrow fontpkg-barlow fontpkg-barlow-condensed fontpkg-barlow-semi-condensed
  fontpkg-roboto fontpkg-roboto-condensed fontpkg-roboto-mono fontpkg-roboto-slab fontpkg-noto-sans
  fontpkg-noto-serif fontpkg-open-sans fontpkg-lato fontpkg-lora fontpkg-literata fontpkg-newsreader
  fontpkg-spectral fontpkg-vollkorn fontpkg-cardo fontpkg-cormorant-garamond fontpkg-domine
  fontpkg-bitter fontpkg-zilla-slab fontpkg-arvo fontpkg-frank-ruhl-libre fontpkg-playfair-display
  fontpkg-dm-serif-text fontpkg-andada-pro fontpkg-inconsolata fontpkg-space-mono fontpkg-dm-mono
  fontpkg-jetbrains-mono fontpkg-fira-sans fontpkg-fira-sans-condensed fontpkg-work-sans
  fontpkg-inter fontpkg-arimo fontpkg-libre-franklin fontpkg-public-sans fontpkg-oswald
  fontpkg-saira-condensed fontpkg-encode-sans fontpkg-news-cycle fontpkg-antic-slab
  fontpkg-sanchez fontpkg-montserrat fontpkg-raleway fontpkg-nunito-sans fontpkg-karla
)

# Old print first, then typewriter, dot-matrix, pixel and condensed faces seen on receipts.
NPM_FONTS_VERSION=5.3.0
NPM_FONTS=(
  im-fell-english im-fell-dw-pica im-fell-double-pica im-fell-french-canon im-fell-great-primer
  libre-caslon-text sorts-mill-goudy goudy-bookletter-1911 rosarivo fanwood-text linden-hill
  alegreya baskervville bodoni-moda gelasio tinos cormorant-infant
  special-elite cutive-mono vt323 share-tech-mono doto dotgothic16 pixelify-sans ubuntu-mono
  overpass-mono b612-mono nova-mono red-hat-mono cousine sometype-mono kode-mono azeret-mono
  pathway-gothic-one fjalla-one antonio saira-extra-condensed
)

if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
  missing=()
  for p in "${APT_FONTS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt_install() {  # waits for a dpkg lock held by another install instead of failing
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "$@" >/dev/null 2>&1
    }
    # All at once; if that fails, one by one so a package missing from this Debian release
    # skips, not fails, the rest.
    if ! apt_install "${missing[@]}"; then
      for p in "${missing[@]}"; do
        apt_install "$p" || echo "install_fonts: apt package $p not available, skipped" >&2
      done
    fi
  fi
else
  echo "install_fonts: not root or no apt-get: Debian fonts skipped" >&2
fi

mkdir -p "$FONT_DIR/fontpkg" "$FONT_DIR/.wheels"
for p in "${PIP_FONTS[@]}"; do
  dest="$FONT_DIR/fontpkg/$p"
  [[ -f "$dest/.done" ]] && continue
  if "$PYTHON" -m pip download -q --no-deps --disable-pip-version-check -d "$FONT_DIR/.wheels" "$p" \
      >/dev/null 2>&1; then
    whl=$(ls "$FONT_DIR/.wheels/${p//-/_}"-*.whl 2>/dev/null | head -n1)
    mkdir -p "$dest"
    "$PYTHON" - "$whl" "$dest" <<'EOF'
import pathlib, sys, zipfile
whl, dest = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.lower().endswith((".ttf", ".otf")) or n.endswith("LICENSE"):
            (dest / pathlib.PurePosixPath(n).name).write_bytes(z.read(n))
EOF
    touch "$dest/.done"
  else
    echo "install_fonts: PyPI package $p not available, skipped" >&2
  fi
done
rm -rf "$FONT_DIR/.wheels"

mkdir -p "$FONT_DIR/fontsource"
for p in "${NPM_FONTS[@]}"; do
  dest="$FONT_DIR/fontsource/$p"
  [[ -f "$dest/.done" ]] && continue
  url="https://registry.npmjs.org/@fontsource/$p/-/$p-$NPM_FONTS_VERSION.tgz"
  tgz="$FONT_DIR/fontsource/.$p.tgz"
  if curl -fsSL --retry 3 -o "$tgz" "$url"; then
    mkdir -p "$dest"
    # Latin subset only (ASCII + the typographic marks), no hairline weights.
    tar -xzf "$tgz" -C "$dest" --strip-components=2 --wildcards \
      "package/files/$p-latin-[4-9]00-*.woff" 2>/dev/null || true
    tar -xzf "$tgz" -C "$dest" --strip-components=1 package/LICENSE 2>/dev/null || true
    rm -f "$tgz"
    touch "$dest/.done"
  else
    echo "install_fonts: npm package @fontsource/$p not available, skipped" >&2
  fi
done
n=$(find /usr/share/fonts "$FONT_DIR" \( -iname '*.[ot]tf' -o -iname '*.woff' \) 2>/dev/null | wc -l)
echo "install_fonts: $n font files available (Debian + $FONT_DIR)"
