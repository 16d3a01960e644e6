"""Sentence splitting that survives abbreviations, decimals and quotes.

syntok (rule-based, no downloaded data) splits; we keep each sentence's character offsets so
the summary quotes the text exactly as given. Text from OCR arrives with line breaks in the
middle of sentences and words hyphenated across lines; both are mended first.
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
            start = tokens[0].offset
            end = tokens[-1].offset + len(tokens[-1].value)
            chunk = text[start:end].strip()
            if not any(ch.isalnum() for ch in chunk):
                continue
            out.append(Sentence(len(out), chunk, start, end))
            if limit is not None and len(out) >= limit:
                return out
    return out
