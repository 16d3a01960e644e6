"""Find the fonts installed by ``scripts/install_fonts.sh`` and sort them by style.

Each usable font file becomes a :class:`FontInfo` with its family, style tags (serif, sans,
mono, typewriter, italic, bold, condensed) and the typographic marks it can draw. A font is
usable when it draws every printable ASCII character (no .notdef box), so symbol, math and
decorative-initial fonts drop out by test rather than by a name list that goes stale.
The scan takes ~20 s for ~900 files, so its result is cached as JSON next to the fonts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from PIL import ImageFont

from ..model.charset import ASCII, TYPOGRAPHIC

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
FONT_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/share/texmf/fonts/opentype"),  # lmodern, tex-gyre land here on Debian
    REPO_ROOT / ".tools" / "fonts",
)
CACHE_VERSION = 5

# Styles no printed document body uses: too thin to survive a scan, or not text faces.
# Small caps and script faces are skipped too: their glyphs do not match the label's letters.
_SKIP_NAME = (
    "thin",
    "hairline",
    "extralight",
    "initials",
    "math",
    "symbol",
    "dingbat",
    "emoji",
    "ornament",
    "icons",
    "d050000l",
    "allsc",
    "smallcaps",
    "retina",
    "z003",
    "chorus",
    "script",
    "keyboard",
    "caps",
    "garamondsc",
    "lmromancaps",
    "lmmonocaps",
)
_MONO = (
    "mono",
    "courier",
    "code",
    "inconsolata",
    "hack",
    "cmuntt",
    "lmmono",
    "nimbusmono",
    "cursor",
    "anonymous",
    "typewriter",
    "plexmono",
    "spacemono",
    "dmmono",
    "vt323",
    "sharetech",
    "cousine",
    "doto",
    "dotgothic",
    "specialelite",
    "cutive",
)
_TYPEWRITER = (
    "courier",
    "cmuntt",
    "lmmono",
    "nimbusmono",
    "cursor",
    "typewriter",
    "prestige",
    "freemono",
    "specialelite",
    "cutive",
)
_SANS = (
    "sans",
    "grotesk",
    "gothic",
    "roboto",
    "lato",
    "inter",
    "arimo",
    "barlow",
    "fira",
    "cantarell",
    "carlito",
    "gillius",
    "universalis",
    "switzera",
    "verana",
    "go-",
    "helvet",
    "nimbussans",
    "urwgothic",
    "oswald",
    "archivo",
    "franklin",
    "montserrat",
    "raleway",
    "karla",
    "work",
    "encode",
    "newscycle",
    "vera",
    "heros",
    "adventor",
    "cmunss",
    "lmsans",
    "plexsans",
    "opensans",
    "ptsans",
    "merriweathersans",
    "dejavusans",
    "liberationsans",
    "freesans",
    "saira",
    "public",
    "pathway",
    "fjalla",
    "antonio",
    "pixelify",
    "overpass",
)
_CONDENSED = ("condensed", "narrow", "cond", "compressed")
_ITALIC = ("italic", "oblique", "ita", "slanted", "cmunti", "cmunsl")
_BOLD = ("bold", "black", "heavy", "semibold", "extrabold", "bd")


@dataclasses.dataclass(frozen=True)
class FontInfo:
    """One font file: ``path``, ``family``, style ``tags`` and drawable ``extra_chars``."""

    path: str
    family: str
    tags: tuple[str, ...]
    extra_chars: str  # which of charset.TYPOGRAPHIC it draws (ASCII is always complete)
    variable: bool  # OpenType variable font: weight can be set at render time

    def has(self, tag: str) -> bool:
        return tag in self.tags


def _font_files(dirs: Iterable[Path]) -> list[Path]:
    files = []
    for d in dirs:
        if d.is_dir():
            files += [p for p in d.rglob("*") if p.suffix.lower() in (".ttf", ".otf", ".woff")]
    # One copy per file name: Debian ships some families twice (e.g. .otf + .ttf trees).
    seen, out = set(), []
    for p in sorted(files):
        key = p.name.lower()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# Weight names that some fonts (WOFF subsets, static cuts) put in the family name: "Alegreya
# SemiBold" is a style of Alegreya, not a family of its own for sampling.
_WEIGHT_SUFFIX = re.compile(
    r"(\s+(Medium|SemiBold|Semibold|DemiBold|ExtraBold|UltraBold|Bold|Black|Heavy|ExCond|Regular))+$"
)


def _draws(font: ImageFont.FreeTypeFont, ch: str, notdef: bytes) -> bool:
    mask = font.getmask(ch)
    return ch == " " or (mask.getbbox() is not None and bytes(mask) != notdef)


def _tags(path: Path, family: str, style: str) -> tuple[str, ...]:
    name = (path.stem + " " + family + " " + style).lower().replace(" ", "")
    low = (path.stem + " " + style).lower()
    tags = []
    if any(k in name for k in _MONO):
        tags.append("mono")
    if any(k in name for k in _TYPEWRITER):
        tags.append("typewriter")
    if "mono" not in tags:
        tags.append("sans" if any(k in name for k in _SANS) and "serif" not in name else "serif")
    if any(k in low for k in _CONDENSED):
        tags.append("condensed")
    if any(k in low for k in _ITALIC):
        tags.append("italic")
    if any(k in low.replace("semibold", "bold") for k in _BOLD):
        tags.append("bold")
    return tuple(tags)


def scan_font(path: Path) -> FontInfo | None:
    """Inspect one font file → :class:`FontInfo`, or None when it cannot draw all of ASCII."""
    if any(k in path.name.lower() for k in _SKIP_NAME):
        return None
    try:
        font = ImageFont.truetype(str(path), 24)
        family, style = font.getname()
        if any(k in (family or "").lower().replace(" ", "") for k in _SKIP_NAME):
            return None
        notdef = bytes(font.getmask("\ue000"))
        if not all(_draws(font, c, notdef) for c in ASCII):
            return None
        extra = "".join(c for c in TYPOGRAPHIC if _draws(font, c, notdef))
        try:
            variable = bool(font.get_variation_axes())
        except OSError:
            variable = False
    except OSError as e:  # unreadable or unsupported file: skip it, keep the others
        log.debug("skipping font %s: %s", path, e)
        return None
    family = _WEIGHT_SUFFIX.sub("", family or "") or path.stem
    return FontInfo(str(path), family, _tags(path, family or "", style or ""), extra, variable)


def find_fonts(dirs: Iterable[Path] = FONT_DIRS, cache: Path | None = None) -> list[FontInfo]:
    """All usable fonts under ``dirs`` (extra dirs from env ``DOCSUM_FONT_DIRS``, ':'-separated).

    Results are cached in ``cache`` (default ``.tools/fonts/index.json``) keyed by file list.
    """
    dirs = list(dirs) + [Path(p) for p in os.environ.get("DOCSUM_FONT_DIRS", "").split(":") if p]
    files = _font_files(dirs)
    cache = cache or REPO_ROOT / ".tools" / "fonts" / "index.json"
    key = [CACHE_VERSION, [str(p) for p in files]]
    if cache.is_file():
        try:
            data = json.loads(cache.read_text())
            if data["key"] == key:
                return [FontInfo(**{**f, "tags": tuple(f["tags"])}) for f in data["fonts"]]
        except (ValueError, KeyError, TypeError):
            log.warning("font cache %s unreadable, rescanning", cache)
    fonts = [f for f in (scan_font(p) for p in files) if f is not None]
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "fonts": [dataclasses.asdict(f) for f in fonts]}))
    except OSError as e:  # read-only checkout: scanning again next time is only slower
        log.warning("cannot write font cache %s: %s", cache, e)
    log.info("found %d usable fonts in %d files", len(fonts), len(files))
    return fonts


def by_family(fonts: Iterable[FontInfo]) -> dict[str, list[FontInfo]]:
    """Fonts grouped by family name, so sampling a family first keeps big families
    (Junicode's 30 styles) from crowding out small ones."""
    out: dict[str, list[FontInfo]] = {}
    for f in fonts:
        out.setdefault(f.family, []).append(f)
    return out


def summary(fonts: Iterable[FontInfo]) -> dict[str, int]:
    """Number of font files per style tag, for logs and the model card."""
    counts: dict[str, int] = {}
    for f in fonts:
        for t in f.tags:
            counts[t] = counts.get(t, 0) + 1
    return dict(sorted(counts.items()))
