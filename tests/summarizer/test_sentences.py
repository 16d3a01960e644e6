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


def test_pieces_of_a_quotation_cut_by_the_splitter_are_flagged() -> None:
    text = (
        "‘That’s how football works. I’ve got broad shoulders and I know what to expect,’ "
        'he said. "We know where to look. We know how to look," she said. '
        "'We came here for vacation. We're no heroes,' he added. "
        "The Joneses' house burned. He said: \"It's great.\" She didn't say 'no' to it."
    )
    flagged = {s.text: s.quote_fragment for s in split_sentences(normalize(text))}
    assert flagged == {
        "‘That’s how football works.": True,  # opens, never closes
        "I’ve got broad shoulders and I know what to expect,’ he said.": True,  # closes only
        '"We know where to look.': True,
        'We know how to look," she said.': True,
        "'We came here for vacation.": True,
        "We're no heroes,' he added.": True,
        "The Joneses' house burned.": False,  # a possessive, not a quotation mark
        'He said: "It\'s great."': False,
        "She didn't say 'no' to it.": False,
    }


def test_sentence_ends_glued_to_the_next_sentence_are_cut() -> None:
    # Scraped pages often lose the space between paragraphs; syntok reads "community.Dr" as
    # one word. Abbreviations and dotted words keep their stops.
    text = normalize(
        "He was vilified by the scientific community.Dr Venter has not gained a reputation "
        'for modesty."Is my science of a level? Yes," he said. It began in 1991.But at 15 I '
        'left. He chose Sheerin after "a comprehensive process".Speaking on the club\'s site, he '
        "left. The U.S.Army and Mr.Smith agreed. See java.lang.String or www.example.Com now."
    )
    got = split_sentences(text)
    assert [s.text for s in got] == [
        "He was vilified by the scientific community.",
        'Dr Venter has not gained a reputation for modesty."',
        "Is my science of a level?",
        'Yes," he said.',
        "It began in 1991.",
        "But at 15 I left.",
        'He chose Sheerin after "a comprehensive process".',
        "Speaking on the club's site, he left.",
        "The U.S.Army and Mr.Smith agreed.",
        "See java.lang.String or www.example.Com now.",
    ]
    assert all(text[s.start : s.end] == s.text for s in got)
    assert [s.index for s in got] == list(range(len(got)))
