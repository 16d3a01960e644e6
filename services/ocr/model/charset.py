"""The recognizer's alphabet: printable ASCII plus the typographic marks of English print.

Class 0 is the CTC blank; class i (1-based) is ``CHARS[i - 1]``. Text is mapped onto the
alphabet with an explicit table (``FOLD``) rather than Unicode NFKC, because NFKC leaves
curly quotes and dashes alone but turns symbols we keep (e.g. ``…``) into sequences we
cannot predict one frame at a time, and would silently change what the model is taught.
"""

from __future__ import annotations

from collections.abc import Iterable

BLANK = 0
ASCII = "".join(chr(c) for c in range(0x20, 0x7F))  # space .. ~ (95 characters)
TYPOGRAPHIC = "’‘“”–—•°£€©"
CHARS = ASCII + TYPOGRAPHIC

# Characters outside the alphabet that printed text uses, mapped to what a reader would type.
FOLD: dict[str, str] = {
    "\u00a0": " ",  # no-break space
    "\u2009": " ",  # thin space
    "\u202f": " ",  # narrow no-break space
    "\t": " ",
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "–",  # figure dash
    "\u2212": "-",  # minus sign
    "\u00ad": "",  # soft hyphen: invisible unless at a line break
    "\u2026": "...",
    "\u201a": ",",
    "\u201e": "“",
    "\u2032": "'",  # prime
    "\u2033": '"',
    "\u00b4": "'",
    "\u00b7": "•",  # middle dot looks like a small bullet
    "\u2022": "•",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb00": "ff",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\u00d7": "x",
}

# Typographic marks → ASCII, for comparing with transcriptions typed in plain ASCII (UW-III,
# Project Gutenberg, SROIE all transcribe curly quotes and dashes as ASCII).
TO_ASCII: dict[str, str] = {
    "’": "'",
    "‘": "'",
    "“": '"',
    "”": '"',
    "–": "-",
    "—": "--",
    "•": "*",
    "°": "o",
    "£": "L",
    "€": "E",
    "©": "(c)",
}


class Charset:
    """Maps text to class ids (1..len(chars)) and back; id 0 is the CTC blank."""

    def __init__(self, chars: str = CHARS) -> None:
        if len(set(chars)) != len(chars):
            raise ValueError("charset has duplicate characters")
        self.chars = chars
        self._index = {c: i + 1 for i, c in enumerate(chars)}

    @property
    def num_classes(self) -> int:
        """Number of output classes, blank included."""
        return len(self.chars) + 1

    def fold(self, text: str) -> str:
        """Map text onto the alphabet: known look-alikes replaced, other unknowns dropped."""
        out = []
        for ch in text:
            if ch in self._index:
                out.append(ch)
            else:
                out.append(FOLD.get(ch, ""))
        return "".join(out)

    def encode(self, text: str) -> list[int]:
        """Class ids of ``text`` after :meth:`fold` (characters with no mapping are dropped)."""
        return [self._index[c] for c in self.fold(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of class ids, blanks skipped (no CTC collapsing: see ``ctc.greedy_decode``)."""
        n = len(self.chars)
        return "".join(self.chars[i - 1] for i in ids if 0 < i <= n)


def to_ascii(text: str) -> str:
    """Replace typographic marks with their plain-ASCII spelling (’ → ', “ → \", — → --)."""
    return "".join(TO_ASCII.get(c, c) for c in text)


DEFAULT_CHARSET = Charset()
