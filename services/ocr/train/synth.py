"""Render random text lines with random fonts, degrade them like scans, batch them for CTC.

One :class:`LineSynth` per process; it is deterministic given its seed, and its state can be
saved and restored (``get_state`` / ``set_state``) so a resumed training run sees the same
stream it would have seen without the interruption.
"""

from __future__ import annotations

import itertools
import random
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import cast

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..model.charset import DEFAULT_CHARSET, TO_ASCII, TYPOGRAPHIC, Charset
from ..model.crnn import batch_lines, preprocess_line
from .augment import degrade
from .corpus import TextSampler
from .fonts import FontInfo, by_family, find_fonts

#: Share of lines set in small capitals.
SMALL_CAPS = 0.03


def _union(boxes: list, empty: tuple) -> tuple:
    """Bounding box of ``boxes`` (``empty`` when there are none)."""
    if not boxes:
        return empty
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


class LineSynth:
    """Synthetic line images: ``sample()`` → (``[height, W]`` float32 in [0, 1], text)."""

    def __init__(
        self,
        fonts: Sequence[FontInfo] | None = None,
        seed: int = 0,
        height: int = 32,
        charset: Charset = DEFAULT_CHARSET,
    ) -> None:
        fonts = list(fonts) if fonts is not None else find_fonts()
        if not fonts:
            raise RuntimeError("no usable fonts found: run scripts/install_fonts.sh first")
        self.families = list(by_family(fonts).values())
        self.height = height
        self.charset = charset
        self.rng = np.random.default_rng(seed)
        self.pyrng = random.Random(seed)
        self.text = TextSampler(self.pyrng)
        self._fonts: OrderedDict[tuple[str, int], ImageFont.FreeTypeFont] = OrderedDict()

    # -- state for exact resume ------------------------------------------------------------
    def get_state(self) -> dict:
        return {"np": self.rng.bit_generator.state, "py": self.pyrng.getstate()}

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["np"]
        py = state["py"]
        self.pyrng.setstate((py[0], tuple(py[1]), py[2]))

    # -- rendering -------------------------------------------------------------------------
    def _font(self, info: FontInfo, size: int) -> ImageFont.FreeTypeFont:
        key = (info.path, size)
        font = self._fonts.get(key)
        if font is None:
            font = ImageFont.truetype(info.path, size)
            self._fonts[key] = font
            if len(self._fonts) > 400:  # FreeType faces cost memory; keep the recent ones
                self._fonts.popitem(last=False)
        else:
            self._fonts.move_to_end(key)
        if info.variable and self.rng.random() < 0.5:
            try:
                axes = font.get_variation_axes()
                font.set_variation_by_axes(
                    [
                        float(np.clip(self.rng.normal(450, 120), a["minimum"], a["maximum"]))
                        if a["name"] in (b"Weight", "Weight")
                        # FreeType reports a default for every axis of a variable font.
                        else cast(float, a["default"])
                        for a in axes
                    ]
                )
            except OSError:
                pass
        return font

    def render(self, text: str, difficulty: float = 1.0) -> tuple[np.ndarray, str]:
        """Draw ``text`` in a random font and size (14–48 px) and crop it like a line detector.

        Returns (grey uint8 image at render resolution, label). The label differs from
        ``text`` where the font lacks a typographic mark and its ASCII spelling was drawn, and
        is in capitals where the line was set in small capitals.
        """
        rng = self.rng
        fam = self.families[rng.integers(len(self.families))]
        info = fam[rng.integers(len(fam))]
        missing = [c for c in TYPOGRAPHIC if c in text and c not in info.extra_chars]
        for c in missing:
            text = text.replace(c, TO_ASCII[c])
        size = int(rng.integers(14, 49))
        font = self._font(info, size)
        ascent, descent = font.getmetrics()
        spacing = 0.0
        if rng.random() < 0.15 * difficulty:
            spacing = float(rng.uniform(-0.04, 0.25)) * size
        jitter = float(rng.uniform(0, 0.04)) * size if rng.random() < 0.1 * difficulty else 0.0
        width = int(font.getlength(text) + max(0.0, spacing) * len(text)) + 2 * size
        gap = int(size * rng.uniform(1.05, 1.5))
        neighbours = rng.random() < 0.15 * difficulty
        canvas_h = ascent + descent + 2 * size + (2 * gap if neighbours else 0)
        img = Image.new("L", (max(width, 8), canvas_h), 255)
        draw = ImageDraw.Draw(img)
        x0, y0 = size, size + (gap if neighbours else 0)
        if rng.random() < SMALL_CAPS and any(c.islower() for c in text):
            # Small capitals (journal headings, running heads, names in references): lower-case
            # letters drawn as reduced capitals on the baseline; transcribed as capitals.
            small = self._font(info, max(8, round(size * rng.uniform(0.68, 0.82))))
            x, base, boxes = float(x0), y0 + ascent, []
            for ch in text:
                f, glyph = (small, ch.upper()) if ch.islower() else (font, ch)
                draw.text((x, base), glyph, font=f, fill=0, anchor="ls")
                if ch != " ":
                    boxes.append(draw.textbbox((x, base), glyph, font=f, anchor="ls"))
                x += f.getlength(glyph) + max(0.0, spacing)
            bbox = _union(boxes, (x0, y0, x0 + 1, y0 + ascent))
            text = text.upper()
        elif spacing == 0.0 and jitter == 0.0:
            draw.text((x0, y0), text, font=font, fill=0)
            bbox = draw.textbbox((x0, y0), text, font=font)
        else:
            x, boxes = float(x0), []
            for ch in text:
                y = y0 + (rng.normal(0, jitter) if jitter else 0.0)
                draw.text((x, y), ch, font=font, fill=0)
                if ch != " ":
                    boxes.append(draw.textbbox((x, y), ch, font=font))
                x += font.getlength(ch) + spacing
            bbox = _union(boxes, (x0, y0, x0 + 1, y0 + ascent))
        if neighbours:  # bits of the lines above and below that a loose crop catches
            for dy in (-gap, gap):
                if rng.random() < 0.7:
                    draw.text(
                        (x0 + int(rng.integers(-size, size)), y0 + dy),
                        self.text.line(),
                        font=font,
                        fill=0,
                    )
        return self._crop(np.asarray(img), bbox, (y0, y0 + ascent + descent), difficulty), text

    def _crop(
        self, img: np.ndarray, ink: tuple, line: tuple[int, int], difficulty: float
    ) -> np.ndarray:
        """Crop around the ink box or the font's line box with random margins (fractions of
        the text height; negative = clipped ascenders/descenders)."""
        rng = self.rng
        x1, y1, x2, y2 = (int(v) for v in ink)
        if rng.random() < 0.4:  # detector that boxes the whole line height, not just the ink
            y1, y2 = min(y1, line[0]), max(y2, line[1])
        h = max(1, y2 - y1)
        loose = rng.random() < 0.25 * difficulty

        def margin(lo: float, hi: float) -> int:
            return round(h * (rng.uniform(lo, hi) if loose else abs(rng.normal(0, 0.06))))

        top, bot = y1 - margin(-0.1, 0.5), y2 + margin(-0.1, 0.5)
        left, right = x1 - margin(0.0, 0.8), x2 + margin(0.0, 0.8)
        H, W = img.shape
        top, bot = max(0, min(top, y1 + h // 3)), min(H, max(bot, y2 - h // 3))
        left, right = max(0, left), min(W, max(right, left + 4))
        return img[top:bot, left:right]

    def sample(self, difficulty: float = 1.0) -> tuple[np.ndarray, str]:
        """One training line: (normalized ``[height, W]`` float32, label text)."""
        img, text = self.render(self.text.line(), difficulty)
        img = degrade(img, self.rng, difficulty)
        return preprocess_line(img, self.height), text


class SynthBatches:
    """Endless batches ``(x [B,1,H,W], widths [B], targets [sum L], target_lengths [B], texts)``.

    Draws ``pool`` batches' worth of lines, sorts them by width and cuts them into batches
    (width bucketing: little padding), then yields those batches in random order. ``state_dict``
    records the generator state at the start of the current pool and how many of its batches
    were taken, so ``load_state_dict`` can rebuild the pool and continue exactly.
    ``difficulty`` (0–1) may be changed between batches; it applies from the next pool.
    """

    def __init__(
        self, synth: LineSynth, batch_size: int, difficulty: float = 1.0, pool: int = 8
    ) -> None:
        self.synth, self.batch_size, self.pool = synth, batch_size, pool
        self.difficulty = difficulty
        self._batches: list[tuple] = []
        self._taken = 0
        self._pool_state: dict = {}
        self._pool_difficulty = difficulty

    def _fill(self) -> None:
        synth, bs = self.synth, self.batch_size
        self._pool_state, self._pool_difficulty = synth.get_state(), self.difficulty
        lines: list[np.ndarray] = []
        texts: list[str] = []
        while len(lines) < bs * self.pool:
            img, text = synth.sample(self._pool_difficulty)
            ids = synth.charset.encode(text)
            # CTC needs one frame per label plus one between repeated labels.
            need = len(ids) + sum(a == b for a, b in itertools.pairwise(ids))
            if not ids or img.shape[1] // 4 < need:
                continue
            lines.append(img)
            texts.append(text)
        order = np.argsort([im.shape[1] for im in lines], kind="stable")
        chunks = [order[i : i + bs] for i in range(0, len(order), bs)]
        self._batches = []
        for j in synth.rng.permutation(len(chunks)):
            idx = chunks[j]
            x, widths = batch_lines([lines[i] for i in idx])
            seqs = [synth.charset.encode(texts[i]) for i in idx]
            targets = torch.tensor([t for seq in seqs for t in seq], dtype=torch.long)
            lengths = torch.tensor([len(q) for q in seqs], dtype=torch.long)
            self._batches.append((x, widths, targets, lengths, [texts[i] for i in idx]))
        self._taken = 0

    def __iter__(self) -> Iterator[tuple]:
        return self

    def __next__(self) -> tuple:
        if self._taken >= len(self._batches):
            self._fill()
        self._taken += 1
        return self._batches[self._taken - 1]

    def state_dict(self) -> dict:
        return {
            "pool_state": self._pool_state,
            "taken": self._taken,
            "pool_difficulty": self._pool_difficulty,
            "difficulty": self.difficulty,
        }

    def load_state_dict(self, state: dict) -> None:
        self.difficulty = state["difficulty"]
        if state["pool_state"]:
            self.synth.set_state(state["pool_state"])
            saved, self.difficulty = self.difficulty, state["pool_difficulty"]
            self._fill()
            self.difficulty = saved
            self._taken = state["taken"]
