"""Sentence splitting that survives abbreviations, decimals and quotes.

syntok (rule-based, no downloaded data) splits; we keep each sentence's character offsets so
the summary quotes the text exactly as given. Text from OCR arrives with line breaks in the
middle of sentences and words hyphenated across lines; both are mended first. Text scraped
from web pages often has its paragraphs joined without a space ("...the scientific
community.Dr Venter has..."): syntok reads that as one word, so such ends are cut after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import syntok.segmenter as segmenter

# A word broken across lines ("docu-\nment"): joined when the next line starts lower-case.
_HYPHEN_BREAK = re.compile(r"(\w)-\n(?=[a-z])")
# A hyphen before an upper-case or digit line start is a real one ("Anglo-\nSaxon"): kept.
_HYPHEN_KEEP = re.compile(r"(\w)-\n(?=[A-Z0-9])")
# A single line break inside a paragraph becomes a space; blank lines stay paragraph breaks.
_SOFT_BREAK = re.compile(r"(?<!\n)[ \t]*\n(?!\n)[ \t]*")
# A sentence end glued to the next sentence: a lower-case word or a number, its full stop (or
# ! ?) with a closing quotation mark or bracket before or after it, then a capitalized word
# with no space between. Two lower-case characters before the stop keep abbreviations (U.S.A,
# Mr.Smith, e.g.) whole.
_GLUED_END = re.compile(r"[a-z0-9%]{2}[\"”’')]?[.!?]+[\"”’')]?(?=[A-Z][a-z]*[\s,;:'’])")


@dataclass(frozen=True)
class Sentence:
    """One sentence: its position in the document and its text (offsets in characters)."""

    index: int
    text: str
    start: int
    end: int

    @property
    def words(self) -> int:
        """Words in the sentence (whitespace-separated tokens)."""
        return len(self.text.split())

    @property
    def quote_fragment(self) -> bool:
        """Whether the sentence is a piece of a longer quotation (:func:`quote_fragment`)."""
        return quote_fragment(self.text)


#: Characters after which a quotation mark opens a quotation (besides space and the start).
_QUOTE_OPENS_AFTER = "([—–-"
_QUOTE_MARKS = frozenset("\"“”‘’'")


def quote_fragment(text: str) -> bool:
    """Whether ``text`` is a piece of a quotation that the splitter cut in two.

    syntok splits quoted speech at its full stops: ‘That’s how football works. I know what
    to expect,’ he said. comes out as two sentences, the first leaving its quotation open,
    the second closing one it never opened. Either piece alone misquotes: the first has no
    speaker, the second no beginning. Apostrophes (I’ve, don't, the Joneses' house) are told
    apart from quotation marks by what is around them.
    """
    if _QUOTE_MARKS.isdisjoint(text):
        return False
    state: str | None = None  # the quotation open at this point: '"', "'" or None
    closes_unopened = False
    for i, ch in enumerate(text):
        before = text[i - 1] if i else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        if ch == "“":
            state = '"'
        elif ch == "”" or (ch == '"' and state == '"'):
            closes_unopened = closes_unopened or state is None
            state = None
        elif ch == '"':
            if i and not before.isspace() and not after.isalnum():
                closes_unopened = True  # ..., she said," or a quotation's last word."
            else:
                state = '"'
        elif (
            ch in "‘'"
            and state is None
            and (before.isspace() or before in _QUOTE_OPENS_AFTER)
            and after.isalnum()
        ):
            state = "'"
        elif ch in "'’" and not before.isspace() and not after.isalpha():
            if state == "'":
                state = None
            elif before in ".,!?":
                closes_unopened = True  # ...works,’ he said.
    return closes_unopened or state is not None


def normalize(text: str) -> str:
    """Mend line-broken text: join hyphenated words, unwrap lines, keep paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HYPHEN_BREAK.sub(r"\1", text)
    text = _HYPHEN_KEEP.sub(r"\1-", text)
    return _SOFT_BREAK.sub(" ", text)


def split_sentences(text: str, limit: int | None = None) -> list[Sentence]:
    """Split ``text`` (already normalized) into sentences, at most ``limit`` of them.

    Returns an empty list for text without any word.
    """
    out: list[Sentence] = []
    for paragraph in segmenter.analyze(text):
        for tokens in paragraph:
            if not tokens:
                continue
            last = tokens[-1].offset + len(tokens[-1].value)
            for start, end in _unglued(text, tokens[0].offset, last):
                chunk = text[start:end]
                if not any(ch.isalnum() for ch in chunk):
                    continue
                out.append(Sentence(len(out), chunk, start, end))
                if limit is not None and len(out) >= limit:
                    return out
    return out


def _unglued(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The span [start, end) of one syntok sentence, cut at sentence ends glued to the next
    sentence (:data:`_GLUED_END`). A dotted word (a web address, java.lang.String) is not
    cut: the word before the stop must be a plain one."""
    spans = []
    for match in _GLUED_END.finditer(text, start, end):
        cut = match.end()
        word = text[text.rfind(" ", start, match.start()) + 1 : match.start() + 2]
        if any(ch in word for ch in "./@:\\"):
            continue  # (the lookahead keeps every cut short of ``end``)
        spans.append((start, cut))
        start = cut
    spans.append((start, end))
    return spans
