"""Random text lines for synthetic training — never text from an evaluation set.

Sources: English word frequencies from the ``wordfreq`` package (so letters, word lengths and
short function words occur as in real prose), the system word list ``/usr/share/dict/words``
(rare words, proper names; Debian package ``wamerican``) when present, and generators for
numbers, dates, prices, codes, receipts and typographic marks. Line kinds and their shares are
in ``KINDS``; every character of the alphabet appears (see ``tests/ocr/test_model_core.py``).
"""

from __future__ import annotations

import itertools
import random
from functools import lru_cache
from pathlib import Path

from ..model.charset import CHARS

ABBREVIATIONS = (
    "e.g.",
    "i.e.",
    "etc.",
    "Fig.",
    "Figs.",
    "Vol.",
    "No.",
    "pp.",
    "p.",
    "Dr.",
    "Mr.",
    "Mrs.",
    "Ms.",
    "Prof.",
    "Inc.",
    "Ltd.",
    "Co.",
    "Corp.",
    "Jan.",
    "Feb.",
    "Aug.",
    "Sept.",
    "Oct.",
    "Dec.",
    "vs.",
    "cf.",
    "et al.",
    "Eq.",
    "Sec.",
    "Ch.",
    "Ref.",
    "St.",
    "Ave.",
    "approx.",
    "U.S.",
    "Ph.D.",
    "A.M.",
    "p.m.",
    "Jr.",
    "ed.",
)
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
RECEIPT_WORDS = (
    "TOTAL",
    "SUBTOTAL",
    "CASH",
    "CHANGE",
    "TAX",
    "GST",
    "VAT",
    "QTY",
    "AMOUNT",
    "INVOICE",
    "RECEIPT",
    "TEL",
    "FAX",
    "DATE",
    "TIME",
    "CASHIER",
    "ITEM",
    "PRICE",
    "DISCOUNT",
    "ROUNDING",
    "BALANCE",
    "PAID",
    "THANK YOU",
    "PLEASE COME AGAIN",
    "NO.",
    "SDN BHD",
    "LTD",
    "S/N",
    "REF",
    "TABLE",
    "CARD",
    "VISA",
    "MASTER",
    "NETT",
)


@lru_cache(maxsize=1)
def _vocab() -> tuple[list[str], list[float]]:
    """Top English words with cumulative sampling weights ∝ frequency**0.85 (a little flatter
    than English so rarer words and letters such as q, z, j occur often enough to be learned)."""
    from wordfreq import top_n_list, word_frequency

    words = [w for w in top_n_list("en", 40000) if w.isascii() and any(c.isalpha() for c in w)]
    weights = [word_frequency(w, "en") ** 0.85 for w in words]
    return words, list(itertools.accumulate(weights))


@lru_cache(maxsize=1)
def _dict_words() -> list[str]:
    path = Path("/usr/share/dict/words")
    if not path.is_file():
        return []
    return [
        w.strip()
        for w in path.read_text(errors="ignore").splitlines()
        if w.strip().isascii() and w.strip().isalpha()
    ]


class TextSampler:
    """Draws text lines of 1–80 characters; ``rng`` makes the stream reproducible."""

    KINDS = (  # (generator, weight): prose dominates, as on real pages
        ("prose", 62),
        ("reference", 6),
        ("receipt", 9),
        ("numbers", 6),
        ("typographic", 7),
        ("caps", 4),
        ("title", 3),
        ("random", 3),
    )

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words, self.cum_weights = _vocab()
        self.dict_words = _dict_words() or self.words
        self._kinds = [k for k, _ in self.KINDS]
        self._kind_w = [w for _, w in self.KINDS]

    # -- tokens -------------------------------------------------------------------------
    def word(self) -> str:
        r = self.rng
        if r.random() < 0.08:
            w = r.choice(self.dict_words)
        else:
            w = r.choices(self.words, cum_weights=self.cum_weights)[0]
        if r.random() < 0.06:
            w = w.capitalize()  # names, sentence-internal capitals
        return w

    def number(self) -> str:
        r = self.rng
        k = r.random()
        if k < 0.3:
            return str(r.randint(0, 100))
        if k < 0.5:
            return str(r.randint(100, 99999))
        if k < 0.65:
            return f"{r.uniform(0, 1000):.{r.choice((1, 2, 3))}f}"
        if k < 0.75:
            return f"{r.randint(1000, 9999999):,}"
        if k < 0.85:
            return f"{r.randint(1, 99)}%"
        return str(r.randint(1600, 2030))

    def date(self) -> str:
        r = self.rng
        d, m, y = r.randint(1, 28), r.randint(1, 12), r.randint(1900, 2030)
        return r.choice(
            (
                f"{d:02d}/{m:02d}/{y}",
                f"{d}-{m}-{y % 100:02d}",
                f"{y}-{m:02d}-{d:02d}",
                f"{d} {MONTHS[m - 1]} {y}",
                f"{MONTHS[m - 1][:3]} {d}, {y}",
                f"{MONTHS[m - 1]} {d}, {y}",
                f"{d:02d}.{m:02d}.{y}",
            )
        )

    def code(self) -> str:
        r = self.rng
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
        k = r.random()
        if k < 0.25:
            return (
                f"{r.choice(('INV', 'NO', 'REF', 'ORD', 'CS', 'T'))}{r.choice('-#: ')}"
                f"{r.randint(0, 10 ** r.randint(3, 8)):0{r.randint(3, 8)}d}"
            )
        if k < 0.45:
            return f"{r.randint(1, 99):02d}-{r.randint(1000, 9999)} {r.randint(1000, 9999)}"
        if k < 0.6:
            return f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}" + (
                f":{r.randint(0, 59):02d}" if r.random() < 0.5 else r.choice(("", " AM", " PM"))
            )
        if k < 0.75:
            return "".join(r.choice(letters + "0123456789") for _ in range(r.randint(4, 12)))
        if k < 0.9:
            return f"({r.randint(100, 999)}) {r.randint(100, 999)}-{r.randint(1000, 9999)}"
        return f"{r.randint(100000, 999999)}-{r.choice(letters)}"

    def price(self) -> str:
        r = self.rng
        v = f"{r.uniform(0, 10 ** r.randint(1, 4)):.2f}"
        return r.choice((v, v, f"${v}", f"£{v}", f"€{v}", f"RM{v}", f"RM {v}", f"{v} EUR", f"-{v}"))

    # -- line kinds ---------------------------------------------------------------------
    def _fill(self, n: int, token) -> str:
        out = ""
        while len(out) < n:
            out = (out + " " + token()).strip()
        return out

    def prose(self, n: int) -> str:
        r = self.rng
        toks: list[str] = []
        start = r.random() < 0.5
        double = r.choice(('"', "“”", "“”"))
        while len(" ".join(toks)) < n:
            k = r.random()
            if k < 0.04:
                t = self.number()
            elif k < 0.055:
                t = r.choice(ABBREVIATIONS)
            elif k < 0.065:
                t = self.date()
            else:
                t = self.word()
                if r.random() < 0.02:
                    t = f"{t}-{self.word()}"
            if start:
                t = t[:1].upper() + t[1:]
            start = False
            q = r.random()
            if q < 0.04:
                t = f"({t}" if r.random() < 0.5 else f"{t})"
            elif q < 0.09:
                o, c = (double[0], double[-1]) if r.random() < 0.75 else ("‘", "’")
                if r.random() < 0.2:  # old print sets a gap inside quotation marks
                    o, c = o + " ", " " + c
                t = f"{o}{t}" if r.random() < 0.5 else f"{t}{c}"
            elif q < 0.10:
                t = f"[{r.randint(1, 60)}]"
            p = r.random()
            if p < 0.06:
                t += "."
                start = True
            elif p < 0.13:
                t += ","
            elif p < 0.145:
                t += r.choice(";:?!")
            elif p < 0.155:
                t += r.choice((" –", " —", "—", " -"))
            elif p < 0.162:  # ellipses; TeX and older type set them as spaced points
                t += r.choice(("...", " . . .", " . . . .", ", . . . ,"))
            toks.append(t)
        line = " ".join(toks)
        if r.random() < 0.5:
            line = line.replace("'", "’")
        if r.random() < 0.15 and len(toks[-1]) > 4:  # hyphenated at the line end
            cut = r.randint(2, len(toks[-1]) - 2)
            line = line[: len(line) - len(toks[-1]) + cut] + "-"
        return line

    def reference(self, n: int) -> str:
        r = self.rng
        init = "ABCDEFGHJKLMNOPRSTW"
        names = ", ".join(
            f"{r.choice(init)}. {self.word().capitalize()}" for _ in range(r.randint(1, 3))
        )
        title = " ".join(self.word() for _ in range(r.randint(2, 6))).capitalize()
        q = r.choice((('"', '"'), ("“", "”")))
        parts = [
            f"[{r.randint(1, 99)}]" if r.random() < 0.5 else f"{r.randint(1, 99)}.",
            names + ",",
            f"{q[0]}{title},{q[1]}",
            self.word().capitalize(),
            r.choice(ABBREVIATIONS),
            f"vol. {r.randint(1, 120)},",
            f"pp. {r.randint(1, 500)}{r.choice('-–')}{r.randint(501, 999)},",
            f"{r.randint(1950, 2024)}.",
        ]
        return " ".join(parts)[:n].rstrip()

    def receipt(self, n: int) -> str:
        r = self.rng
        k = r.random()
        if k < 0.5:
            name = " ".join(self.word().upper() for _ in range(r.randint(1, 4)))
            qty = f"{r.randint(1, 12)} X {self.price()}" if r.random() < 0.4 else ""
            line = f"{name} {qty} {self.price()}".replace("  ", " ")
        elif k < 0.75:
            line = f"{r.choice(RECEIPT_WORDS)}{r.choice((':', ' :', '', ' '))} " + r.choice(
                (self.price(), self.date(), self.code(), self.number())
            )
        else:
            line = self._fill(
                n,
                lambda: r.choice(
                    (self.word().upper(), r.choice(RECEIPT_WORDS), self.code(), self.number())
                ),
            )
        return line[:n].rstrip()

    def numbers(self, n: int) -> str:
        r = self.rng
        return self._fill(n, lambda: r.choice((self.number, self.date, self.code, self.price))())

    def typographic(self, n: int) -> str:
        r = self.rng

        def tok() -> str:
            k = r.randint(0, 9)
            w = self.word()
            return (
                f"“{w}”",
                f"‘{w}’",
                f"{w}’s",
                f"{r.randint(1, 99)}–{r.randint(100, 999)}",
                f"{w} — {self.word()}",
                f"• {w}",
                f"{r.randint(-30, 400)}°",
                self.price(),
                f"© {r.randint(1950, 2030)}",
                f"{w}—{self.word()}",
            )[k]

        return self._fill(n, tok)

    def random_chars(self, n: int) -> str:
        r = self.rng
        s = "".join(r.choice(CHARS) for _ in range(min(n, 30)))
        return " ".join(s.split())  # no leading/trailing or double spaces

    def line(self) -> str:
        """One line: a random kind, 1–80 characters long (most between 25 and 80)."""
        r = self.rng
        n = r.randint(1, 24) if r.random() < 0.2 else r.randint(25, 80)
        kind = r.choices(self._kinds, self._kind_w)[0]
        if kind == "caps":
            text = self.prose(n).upper()
        elif kind == "title":
            text = " ".join(w.capitalize() for w in self.prose(n).split())
        elif kind == "random":
            text = self.random_chars(n)
        else:
            text = getattr(self, kind)(n)
        text = " ".join(text.split())[:80].strip()
        return text or self.word()
