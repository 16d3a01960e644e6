"""Inputs for bench/gpu_bench.py made in code, the same on every machine: news-like articles
from a seeded generator, text lines and 300-dpi pages rendered from their sentences with the
tests' document renderer (tests/support/documents.py). No data set is read, so the run needs
nothing beside the repository.
"""

from __future__ import annotations

import random
import textwrap
from dataclasses import dataclass

import numpy as np

from tests.support.documents import line_image, text_page

NAMES = (
    "Maria Lopez", "James Okafor", "Chen Wei", "Anna Novak", "Rahul Mehta", "Sofia Rossi",
    "Tom Becker", "Aisha Khan", "Lars Nilsson", "Grace Mbeki", "Pablo Ortiz", "Yuki Tanaka",
)  # fmt: skip
ROLES = (
    "mayor", "finance minister", "chief executive", "union leader", "head teacher",
    "police chief", "harbour master", "spokeswoman", "chairman", "director",
)  # fmt: skip
BODIES = (
    "the city council", "the regional bank", "the port authority", "the teachers' union",
    "the water company", "the hospital trust", "the football club", "the rail operator",
    "the university", "the farmers' cooperative", "the energy regulator", "the museum",
)  # fmt: skip
PLACES = (
    "Northfield", "the old harbour", "the river valley", "the eastern district", "Kingsbridge",
    "the industrial estate", "the coastal villages", "the town centre", "Millbrook",
)  # fmt: skip
THINGS = (
    "new homes", "bus routes", "school places", "hospital beds", "wind turbines", "jobs",
    "miles of road", "street lights", "flood barriers", "public libraries", "sports halls",
)  # fmt: skip
VERBS = (
    "approved", "rejected", "delayed", "announced", "promised", "questioned", "funded",
    "cancelled", "reviewed", "welcomed",
)  # fmt: skip
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "March", "April", "June", "September", "October", "December")
TEMPLATES = (
    "{name}, the {role} of {body}, said on {day} that the plan for {n} {thing} in {place} "
    "would go ahead.",
    "{body_c} {verb} a budget of {money} million pounds for {thing} after a long debate.",
    "Residents of {place} asked why {thing} had been left out of the plan again.",
    "The {role} told reporters that costs had risen by {pct} per cent since {month}.",
    "Critics said the decision ignored {place}, where {n} families still wait for {thing}.",
    "{name} warned that {body} could not pay for {thing} without help from the government.",
    "A report published in {month} found that {pct} per cent of {thing} were in poor repair.",
    "{body_c} will meet again on {day} to vote on the future of {place}.",
    "Supporters of the scheme said it would bring {n} {thing} to {place} within {years} years.",
    "{name} {verb} the proposal, calling it a fair deal for {place}.",
    "The work in {place} is expected to start in {month} and to cost {money} million pounds.",
    "Opposition members said {body} had {verb} the wrong plan at the wrong time.",
)


@dataclass(frozen=True)
class Article:
    sentences: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def sentence(rng: random.Random) -> str:
    body = rng.choice(BODIES)
    return rng.choice(TEMPLATES).format(
        name=rng.choice(NAMES),
        role=rng.choice(ROLES),
        body=body,
        body_c=body[0].upper() + body[1:],
        place=rng.choice(PLACES),
        thing=rng.choice(THINGS),
        verb=rng.choice(VERBS),
        day=rng.choice(DAYS),
        month=rng.choice(MONTHS),
        n=rng.randint(2, 900),
        pct=rng.randint(2, 60),
        money=f"{rng.uniform(1, 300):.1f}",
        years=rng.randint(2, 10),
    )


def articles(count: int, seed: int = 0, sentences: tuple[int, int] = (24, 36)) -> list[Article]:
    """``count`` articles of 24–36 sentences (about 500–750 words, a news article's length)."""
    rng = random.Random(seed)
    return [Article([sentence(rng) for _ in range(rng.randint(*sentences))]) for _ in range(count)]


def text_lines(count: int, seed: int = 1) -> list[tuple[np.ndarray, str]]:
    """``count`` single text lines (grey uint8, 20–36 px glyphs) with their text."""
    rng = random.Random(seed)
    out: list[tuple[np.ndarray, str]] = []
    while len(out) < count:
        for piece in textwrap.wrap(sentence(rng), rng.randint(30, 70)):
            img = line_image(piece, size=rng.randint(20, 36))
            out.append((np.asarray(img), piece))
    return out[:count]


def pages(count: int, seed: int = 2) -> list[tuple[np.ndarray, str]]:
    """``count`` letter-size pages at 300 dpi, about 33 lines of 11-pt serif each, with their
    text (the page's sentences, as one paragraph)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        chosen: list[str] = []
        while sum(len(s) + 1 for s in chosen) < 2600:
            chosen.append(sentence(rng))
        out.append((np.asarray(text_page(chosen)), " ".join(chosen)))
    return out
