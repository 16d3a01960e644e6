"""English spacing for what the recognizer reads: no space before ``;`` or ``?``, none just
inside curly double quotes.

Old books set a visible gap before ``;`` and inside quotation marks (``say ; but``,
``“ The``), and the recognizer, reading what it sees, prints it. Text in English puts no space
there, and transcriptions of such books do not either; colons are left alone because receipts
and forms space them on purpose (``TEL : 03-…``).
"""

from __future__ import annotations

import re

from .ctc import Decoded

# A space run before ; or ?, after an opening “, or before a closing ”.
_LOOSE = re.compile(r" +(?=[;?])|(?<=“) +| +(?=”)")


def tidy_text(text: str) -> str:
    """``text`` with the loose spaces removed."""
    return _LOOSE.sub("", text)


def tidy_spacing(reading: Decoded) -> Decoded:
    """``reading`` with the loose spaces removed; per-character probabilities stay aligned."""
    text = reading.text
    drop = {i for m in _LOOSE.finditer(text) for i in range(m.start(), m.end())}
    if not drop:
        return reading
    keep = [i for i in range(len(text)) if i not in drop]
    probs = reading.char_probs
    return Decoded(
        "".join(text[i] for i in keep),
        reading.confidence,
        tuple(probs[i] for i in keep) if len(probs) == len(text) else probs,
    )
