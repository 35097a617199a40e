"""A page's text as positioned lines and its drawn rules, read from PDFium's text page.

Layout analysis (`layout`) needs more than the text: where each character sits, how big and
how bold it is, and which lines are drawn on the page (table rulings). PDFium has all of it;
this module reads it once per page, in the same pass as the text, so the analysis costs a few
calls per character rather than a second parse. Coordinates are PDF points with the origin at
the page's top-left corner (y grows downwards), as the result's `bbox` is.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

# A line ends where PDFium ends it ("\r\n") or where the next character starts lower than
# this share of the line's height (PDFium drops the break after a hyphen that ends a line).
NEW_LINE_DROP = 0.6
# Path objects read per page: beyond this a page is a drawing, not a page with a table.
MAX_PATHS = 4000
RULE_THICKNESS = 2.5  # points: thicker than this, a shape is a box, not a rule
_BOLD_NAMES = ("bold", "black", "heavy", "semibold", "demibold", "demi")
_MONO_NAMES = ("courier", "mono", "consolas", "menlo", "typewriter")
_HYPHEN_MARKS = "\ufffe\x02"


@dataclass(slots=True)
class Char:
    ch: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass
class Line:
    """One printed line: its characters (spaces included), box, font size, boldness, font kind."""

    chars: list[Char]
    size: float
    bold: bool
    mono: bool = False
    x0: float = 0.0
    y0: float = 0.0
    x1: float = 0.0
    y1: float = 0.0
    pieces: list[Any] | None = None  # tables.pieces(), worked out once

    def __post_init__(self) -> None:
        ink = [c for c in self.chars if not c.ch.isspace()] or self.chars
        self.x0, self.x1 = min(c.x0 for c in ink), max(c.x1 for c in ink)
        self.y0, self.y1 = min(c.y0 for c in ink), max(c.y1 for c in ink)

    @property
    def text(self) -> str:
        return "".join(c.ch for c in self.chars).strip()

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
    raw = textpage.raw
    box = pdfium_c.FS_RECTF()
    style = _Style(textpage)
    lines: list[Line] = []
    chars: list[Char] = []
    facts: list[tuple[int, float, bool, bool]] = []  # (letters, size, bold, mono) per word
    current: tuple[float, bool, bool] = (0.0, False, False)
    letters = 0
    top: float | None = None  # the line's ink so far, top to bottom
    bottom = 0.0

    def finish() -> None:
        nonlocal chars, facts, letters, top
        if letters:
            facts.append((letters, *current))
        if top is not None:
            lines.append(_line(chars, facts))
        chars, facts, letters, top = [], [], 0, None

    for index, ch in enumerate(text):
        if ch in "\r\n":
            finish()
            continue
        if ch.isspace():  # its box is never used: no call for it
            chars.append(Char(ch, 0.0, 0.0, 0.0, 0.0))
            if letters:
                facts.append((letters, *current))
                letters = 0
            continue
        if not pdfium_c.FPDFText_GetLooseCharBox(raw, index, box):
            continue
        mark = ch in _HYPHEN_MARKS
        char = Char("-" if mark else ch, box.left, height - box.top, box.right, height - box.bottom)
        if top is not None and char.y0 > top + (bottom - top) * NEW_LINE_DROP:
            finish()  # below the line so far: a break PDFium did not mark
        if top is None:
            top, bottom = char.y0, char.y1
        else:
            top, bottom = min(top, char.y0), max(bottom, char.y1)
        if not letters:
            current = style.of(index)
        letters += 1
        chars.append(char)
        if mark:  # the line went on after the hyphen: PDFium kept no break
            finish()
    finish()
    return _rejoin(lines)


def _rejoin(lines: list[Line]) -> list[Line]:
    """Join pieces PDFium broke off one printed line (around superscripts, font changes):
    the next piece sits on the same baseline, just right of the last."""
    out: list[Line] = []
    for line in lines:
        last = out[-1] if out else None
        if last is not None and _same_line(last, line):
            chars = [*last.chars, Char(" ", 0.0, 0.0, 0.0, 0.0), *line.chars]
            ink = sum(not c.ch.isspace() for c in last.chars)
            other = sum(not c.ch.isspace() for c in line.chars)
            main = last if ink >= other else line
            out[-1] = Line(chars, main.size, main.bold, main.mono)
        else:
            out.append(line)
    return out


def _same_line(a: Line, b: Line) -> bool:
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    height = min(a.y1 - a.y0, b.y1 - b.y0)
    gap = b.x0 - a.x1
    return height > 0 and overlap >= 0.6 * height and -1.0 <= gap <= max(a.size, b.size)


def _line(chars: list[Char], facts: list[tuple[int, float, bool, bool]]) -> Line:
    """A line's size and boldness are those of most of its letters."""
    total = sum(n for n, *_ in facts) or 1
    sizes: dict[float, int] = {}
    for n, size, _, _ in facts:
        sizes[round(size, 1)] = sizes.get(round(size, 1), 0) + n
    size = max(sizes, key=lambda s: sizes[s]) if sizes else 0.0
    if size <= 1.5:  # a font scaled by its text matrix reports size 1: measure the glyphs
        size = _glyph_size(chars)
    bold = sum(n for n, _, b, _ in facts if b) * 2 > total
    mono = sum(n for n, _, _, m in facts if m) * 2 > total
    return Line(chars, size, bold, mono)


def _glyph_size(chars: list[Char]) -> float:
    heights = sorted(c.y1 - c.y0 for c in chars if not c.ch.isspace())
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
