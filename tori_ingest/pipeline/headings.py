"""Which lines are headings, and their levels, judged against the document's body text.

A heading is short and set apart from the body: bigger, or bold where the body is not, or in
capitals. A 12 pt bold line in a paper with a 10 pt body is one, and so is a bold body-size
line in a memo. Levels come from the styles themselves (bigger first, then bold, then capitals)
and, inside one style, from numbering depth ("2" above "2.1"); the PDF's outline, when it has
one, names headings and levels outright.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from tori_ingest.pipeline import markers

BIGGER = 1.12  # a line this much bigger than the body stands out
SMALLER = 0.95  # a line smaller than this never heads anything
TITLE_BIGGER = 1.3
MAX_WORDS = 14
MAX_CHARS = 120
_NUMBERED = re.compile(r"^(\d{1,2}(?:\.\d{1,2}){0,4})\.?\s+\S")


@dataclass(frozen=True)
class Body:
    """The document's running text: its commonest font size and whether it is bold."""

    size: float
    bold: bool


@dataclass(frozen=True)
class Style:
    size: float
    bold: bool
    caps: bool


def body_of(lines: list[tuple[str, float, bool]]) -> Body:
    """(text, size, bold) of every line: the size and weight most characters have."""
    sizes: Counter[float] = Counter()
    bold = 0
    total = 0
    for text, size, is_bold in lines:
        sizes[round(size * 2) / 2] += len(text)
        bold += len(text) if is_bold else 0
        total += len(text)
    size = sizes.most_common(1)[0][0] if sizes else 10.0
    return Body(size or 10.0, bold * 2 > total)


def style_of(text: str, size: float, bold: bool) -> Style:
    return Style(round(size * 2) / 2, bold, _capitals(text))


def stands_out(text: str, size: float, bold: bool, body: Body) -> bool:
    """A line that looks like a heading (or part of one) in a document with this body."""
    words = text.split()
    if not 1 <= len(words) <= MAX_WORDS or len(text) > MAX_CHARS:
        return False
    if sum(ch.isalpha() for ch in text) < 2 or text[-1] in ",;" or markers.BULLETED.match(text):
        return False
    if text.endswith(".") and len(words) > 6:  # a short sentence in bold is still a sentence
        return False
    if text.count(",") >= 2 or "@" in text:  # a list of authors, an address
        return False
    if size < body.size * SMALLER:  # smaller than the body: a label, a footnote, a caption
        return False
    bigger = size >= body.size * BIGGER
    return bigger or (bold and not body.bold) or _capitals(text)


def _capitals(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return len(letters) >= 4 and all(ch.isupper() for ch in letters)


def depth(text: str) -> int:
    """Numbering depth: "2 Scope" → 1, "2.1 Data" → 2, unnumbered → 0."""
    match = _NUMBERED.match(text)
    return match.group(1).count(".") + 1 if match else 0


def levels(headings: list[tuple[Style, int]]) -> list[int]:
    """A level (1 = top) for each (style, numbering depth): styles ranked bigger, bold,
    capitals first; numbering adds depth inside a style; then the levels used are made 1..n."""
    order = sorted({s for s, _ in headings}, key=lambda s: (-s.size, not s.bold, not s.caps))
    rank = {style: i for i, style in enumerate(order)}
    shallowest: dict[Style, int] = {}
    for style, d in headings:
        if d:
            shallowest[style] = min(shallowest.get(style, d), d)
    raw = [rank[s] * 10 + (d - shallowest[s] if d else 0) for s, d in headings]
    dense = {value: i + 1 for i, value in enumerate(sorted(set(raw)))}
    return [dense[value] for value in raw]
