"""Sentence splitting keeps abbreviations and numbers whole and mends OCR line breaks."""

from __future__ import annotations

from docsum.summarizer.sentences import normalize, split_sentences


def test_abbreviations_decimals_and_quotes_do_not_split() -> None:
    text = (
        'Dr. Smith paid $3.50 for it at 5 p.m. on Jan. 3. He said: "It\'s great." '
        "The U.S. economy grew 2.5 per cent. Really?"
    )
    got = [s.text for s in split_sentences(text)]
    assert got == [
        "Dr. Smith paid $3.50 for it at 5 p.m. on Jan. 3.",
        'He said: "It\'s great."',
        "The U.S. economy grew 2.5 per cent.",
        "Really?",
    ]


def test_offsets_point_into_the_text() -> None:
    text = normalize("First one here.  Second one there.")
    for s in split_sentences(text):
        assert text[s.start : s.end] == s.text
    assert [s.index for s in split_sentences(text)] == [0, 1]


def test_ocr_line_breaks_and_hyphenation_are_mended() -> None:
    text = normalize("The docu-\nment was found in the\narchive. It is old.\n\nA new part.")
    got = [s.text for s in split_sentences(text)]
    assert got == ["The document was found in the archive.", "It is old.", "A new part."]
    # A hyphen before an upper-case word is a real hyphen and stays.
    assert "Anglo-Saxon" in normalize("Anglo-\nSaxon")


def test_limit_and_text_without_words() -> None:
    assert len(split_sentences("It rained. We left. They stayed. Then it stopped.", limit=2)) == 2
    assert split_sentences("... --- !!!") == []
