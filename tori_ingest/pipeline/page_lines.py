"""A page's text as positioned lines and its drawn rules, read from PDFium's text page.

Layout analysis (`layout`) needs more than the text: where each word sits, how big and how
bold it is, and which lines are drawn on the page (table rulings). PDFium has all of it; this
module reads it once per page, in the same pass as the text, asking for the boxes of each
word's first and last character and for each text object's font: a few calls per word, not a
second parse. Coordinates are PDF points with the origin at
the page's top-left corner (y grows downwards), as the result's `bbox` is.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass, field
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

# A line ends where PDFium ends it ("\r\n") or where the next character starts lower than
# this share of the line's height (PDFium drops the break after a hyphen that ends a line).
NEW_LINE_DROP = 0.6
STYLE_SAMPLES = 5
# Path objects read per page: beyond this a page is a drawing, not a page with a table.
MAX_PATHS = 4000
RULE_THICKNESS = 2.5  # points: thicker than this, a shape is a box, not a rule
_BOLD_NAMES = ("bold", "black", "heavy", "semibold", "demibold", "demi")
_MONO_NAMES = ("courier", "mono", "consolas", "menlo", "typewriter")
_HYPHEN_MARKS = "\ufffe\x02"
_MARKS = str.maketrans({"\ufffe": "-", "\x02": "-"})
# A line break, or a word: up to and including a hyphen mark (PDFium drops the line break
# after a hyphen that ends a line, so what follows the mark is the next line).
_TOKENS = re.compile(r"\r\n|[\r\n]|[^\s\ufffe\x02]*[\ufffe\x02]|[^\s\ufffe\x02]+")


@dataclass(slots=True)
class Word:
    """A word (or the space between two) and its box."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass
class Line:
    """One printed line: its words (and the spaces between), box, font size, boldness, font."""

    words: list[Word]
    size: float
    bold: bool
    mono: bool = False
    x0: float = 0.0
    y0: float = 0.0
    x1: float = 0.0
    y1: float = 0.0
    pieces: list[Any] | None = None  # tables.pieces(), worked out once

    def __post_init__(self) -> None:
        ink = [c for c in self.words if not c.text.isspace()] or self.words
        self.x0, self.x1 = min(c.x0 for c in ink), max(c.x1 for c in ink)
        self.y0, self.y1 = min(c.y0 for c in ink), max(c.y1 for c in ink)

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.words).strip()

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass
class Rule:
    """A drawn horizontal or vertical line segment (a table's ruling)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def horizontal(self) -> bool:
        return (self.x1 - self.x0) >= (self.y1 - self.y0)


@dataclass
class PageLayout:
    width: float
    height: float
    lines: list[Line] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)


def read_page(page: pdfium.PdfPage, textpage: pdfium.PdfTextPage, text: str) -> PageLayout:
    """The page's lines and rules. `text` is `textpage.get_text_range()` (one character per
    character index: PDFium's own line breaks and spaces included)."""
    width, height = page.get_size()
    layout = PageLayout(float(width), float(height))
    layout.lines = _lines(textpage, text, float(height))
    layout.rules = _rules(page, float(height))
    return layout


class _Style:
    """Per-character font facts, asked of PDFium once per word (they rarely change inside)."""

    def __init__(self, textpage: pdfium.PdfTextPage) -> None:
        self.raw = textpage.raw
        self.name = ctypes.create_string_buffer(128)
        self.flags = ctypes.c_int()
        self.seen: dict[int, tuple[float, bool, bool]] = {}

    def of(self, index: int) -> tuple[float, bool, bool]:
        """(size, bold, monospace); the same for every character of one text object."""
        obj = pdfium_c.FPDFText_GetTextObject(self.raw, index)
        key = ctypes.cast(obj, ctypes.c_void_p).value if obj else None
        if key is not None and key in self.seen:
            return self.seen[key]
        facts = self._ask(index)
        if key is not None:
            self.seen[key] = facts
        return facts

    def _ask(self, index: int) -> tuple[float, bool, bool]:
        size = float(pdfium_c.FPDFText_GetFontSize(self.raw, index))
        weight = pdfium_c.FPDFText_GetFontWeight(self.raw, index)
        got = pdfium_c.FPDFText_GetFontInfo(self.raw, index, self.name, 128, self.flags)
        name = self.name.value.decode("latin-1").lower() if 0 < got <= 128 else ""
        bold = weight >= 600 or any(word in name for word in _BOLD_NAMES)
        return size, bold, any(word in name for word in _MONO_NAMES)


def _lines(textpage: pdfium.PdfTextPage, text: str, height: float) -> list[Line]:
    """Lines of words: PDFium is asked for the boxes of each word's first and last character
    only, and for the font of at most STYLE_SAMPLES words a line (fonts rarely change inside
    one), so a page costs about two calls per word."""
    raw = textpage.raw
    box = pdfium_c.FS_RECTF()
    style = _Style(textpage)
    lines: list[Line] = []
    words: list[Word] = []
    starts: list[int] = []  # the text index of each word's first character
    top = bottom = 0.0  # the line's ink so far

    def finish() -> None:
        nonlocal words, starts
        if words:
            ink = words[::2]  # every other entry is the space between two words
            facts = [(len(ink[i].text), *style.of(starts[i])) for i in _samples(len(ink))]
            lines.append(_line(words, facts))
        words, starts = [], []

    def corner(index: int) -> tuple[float, float, float, float] | None:
        if not pdfium_c.FPDFText_GetLooseCharBox(raw, index, box):
            return None
        return box.left, height - box.top, box.right, height - box.bottom

    for token in _TOKENS.finditer(text):
        if token.group()[0] in "\r\n":
            finish()
            continue
        start, end = token.start(), token.end() - 1
        first, last = corner(start), corner(end) if end > start else None
        if first is None:
            continue
        last = last or first
        word = Word(
            token.group().translate(_MARKS),
            min(first[0], last[0]),
            min(first[1], last[1]),
            max(first[2], last[2]),
            max(first[3], last[3]),
        )
        if words and word.y0 > top + (bottom - top) * NEW_LINE_DROP:
            finish()  # below the line so far: a break PDFium did not mark
        if words:
            words.append(Word(" ", 0.0, 0.0, 0.0, 0.0))
            top, bottom = min(top, word.y0), max(bottom, word.y1)
        else:
            top, bottom = word.y0, word.y1
        words.append(word)
        starts.append(start)
        if text[end] in _HYPHEN_MARKS:  # the line went on after the hyphen: no break kept
            finish()
    finish()
    return _rejoin(lines)


def _samples(n: int) -> list[int]:
    """Which of a line's n words are asked for their font: all of a short line, else the
    first two, the middle one and the last two."""
    if n <= STYLE_SAMPLES:
        return list(range(n))
    return sorted({0, 1, n // 2, n - 2, n - 1})


def _rejoin(lines: list[Line]) -> list[Line]:
    """Join pieces PDFium broke off one printed line (around superscripts, font changes):
    the next piece sits on the same baseline, just right of the last."""
    out: list[Line] = []
    for line in lines:
        last = out[-1] if out else None
        if last is not None and _same_line(last, line):
            words = [*last.words, Word(" ", 0.0, 0.0, 0.0, 0.0), *line.words]
            ink = sum(not c.text.isspace() for c in last.words)
            other = sum(not c.text.isspace() for c in line.words)
            main = last if ink >= other else line
            out[-1] = Line(words, main.size, main.bold, main.mono)
        else:
            out.append(line)
    return out


def _same_line(a: Line, b: Line) -> bool:
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    height = min(a.y1 - a.y0, b.y1 - b.y0)
    gap = b.x0 - a.x1
    return height > 0 and overlap >= 0.6 * height and -1.0 <= gap <= max(a.size, b.size)


def _line(words: list[Word], facts: list[tuple[int, float, bool, bool]]) -> Line:
    """A line's size and boldness are those of most of its letters."""
    total = sum(n for n, *_ in facts) or 1
    sizes: dict[float, int] = {}
    for n, size, _, _ in facts:
        sizes[round(size, 1)] = sizes.get(round(size, 1), 0) + n
    size = max(sizes, key=lambda s: sizes[s]) if sizes else 0.0
    if size <= 1.5:  # a font scaled by its text matrix reports size 1: measure the glyphs
        size = _glyph_size(words)
    bold = sum(n for n, _, b, _ in facts if b) * 2 > total
    mono = sum(n for n, _, _, m in facts if m) * 2 > total
    return Line(words, size, bold, mono)


def _glyph_size(words: list[Word]) -> float:
    heights = sorted(w.y1 - w.y0 for w in words if not w.text.isspace())
    return round(heights[len(heights) // 2] / 1.15, 1) if heights else 0.0


def _rules(page: pdfium.PdfPage, height: float) -> list[Rule]:
    """Thin path objects (lines) and the edges of rectangles, clipped to the page."""
    rules: list[Rule] = []
    for count, obj in enumerate(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH])):
        if count >= MAX_PATHS:
            return []
        try:
            left, bottom, right, top = obj.get_bounds()
        except pdfium.PdfiumError:
            continue
        x0, y0, x1, y1 = left, height - top, right, height - bottom
        w, h = x1 - x0, y1 - y0
        if w <= RULE_THICKNESS and h > RULE_THICKNESS:
            rules.append(Rule((x0 + x1) / 2, y0, (x0 + x1) / 2, y1))
        elif h <= RULE_THICKNESS and w > RULE_THICKNESS:
            rules.append(Rule(x0, (y0 + y1) / 2, x1, (y0 + y1) / 2))
        elif w > RULE_THICKNESS and h > RULE_THICKNESS and _is_rectangle(obj):
            rules += [
                Rule(x0, y0, x1, y0),
                Rule(x0, y1, x1, y1),
                Rule(x0, y0, x0, y1),
                Rule(x1, y0, x1, y1),
            ]
    return rules


def _is_rectangle(obj: pdfium.PdfObject) -> bool:
    """A closed path of at most five straight segments (a cell's border, a box)."""
    segments = int(pdfium_c.FPDFPath_CountSegments(obj.raw))
    return 0 < segments <= 5


def read_outline(doc: pdfium.PdfDocument, limit: int = 2000) -> list[tuple[int, str, int]]:
    """(page number, title, level from 1) of the document's bookmarks that point at a page."""
    out: list[tuple[int, str, int]] = []
    try:
        for item in doc.get_toc(max_depth=6):
            if len(out) >= limit:
                break
            dest, title = item.get_dest(), item.get_title()
            index = dest.get_index() if dest is not None else None
            if index is not None and title:
                out.append((index + 1, title, item.level + 1))
    except pdfium.PdfiumError:
        return []
    return out
