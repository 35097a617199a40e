"""Text cleaning, as pure functions over strings.

`clean_page` fixes one page on its own; `strip_furniture` needs all pages at once, because a
running header is only recognisable by repeating across pages. Cleaning never loses content
silently: every removed line is returned with its page, and a page is never emptied (a line
that is a page's only content stays, so a deck whose slides all say "Background" keeps it).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field

# NFKC already folds the Latin ligatures (U+FB00..FB06); these are the ones it leaves alone.
_LIGATURES = str.maketrans({"\ua732": "AA", "\ua733": "aa", "\u1d6b": "ue"})
# Invisible characters that break words apart: soft hyphen, zero-width space/joiners, BOM.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
# A soft hyphen at a line end is a discretionary break: the word goes on on the next line.
_SOFT_BREAK = re.compile(r"\u00ad[ \t]*\n[ \t]*")
# hyphen-minus, hyphen, non-breaking hyphen at a line end, then the rest of the word.
_HYPHENATED = re.compile(r"(\w)[-\u2010\u2011]\n[ \t]*(\w+)")
# "Vor-\nund Nachteile", "pre-\nand post-war": a suspended hyphen, not a broken word.
_CONJUNCTIONS = frozenset("und oder bzw sowie bis and or nor to et ou".split())
# Control (Cc, but newline and tab), surrogate (Cs) and private-use (Co) characters: fixed
# ranges of Unicode, so one regex pass instead of a category lookup per character.
_UNPRINTED = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff"
    "\U000f0000-\U000ffffd\U00100000-\U0010fffd]"
)
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_DIGITS = re.compile(r"\d+")
# A number standing alone: "18" in "18 1.6. WEGE", not the 1 of "1.6" or "3,5".
_NUMBER = re.compile(r"(?<![\d.,])\d{1,5}(?!\d|[.,]\d)")
_ROMAN = re.compile(r"[\W_]*m{0,3}(cm|cd|d?c{0,3})(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})[\W_]*")

# A line counts as "running" when it opens or closes this share of pages (and at least 3) ...
_RUNNING_SHARE = 0.5
_MIN_PAGES = 3
_EDGE_LINES = 2
_RUNNING_MAX_CHARS = 80  # headers and footers are short; a repeated paragraph is content
# ... or, when it carries a number ("18 1.6. WEGE UND KNOTEN", "Slide 4"), when it repeats on
# _MIN_PAGES pages within this many pages either side (a chapter's own running header) ...
_LOCAL_WINDOW = 4
# ... or when it holds the page's own number (index + one offset shared by half the pages).
_MAX_PAGE_NUMBER = 100_000


@dataclass
class Cleaned:
    """A cleaned page and the lines taken off it (running headers, footers, page numbers)."""

    text: str
    removed: list[str] = field(default_factory=list)


def normalize(text: str) -> str:
    """NFKC, ligatures, invisible characters and control characters (newline and tab kept)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SOFT_BREAK.sub("", text)
    text = unicodedata.normalize("NFKC", text).translate(_LIGATURES).translate(_INVISIBLE)
    return _UNPRINTED.sub("", text)


def _join(match: re.Match[str]) -> str:
    head, rest = match.group(1), match.group(2)
    if not rest[0].islower() or rest.lower() in _CONJUNCTIONS:
        return match.group(0)  # "Jean-\nPaul", "Vor-\nund Nachteile": the hyphen is real
    return head + rest


def dehyphenate(text: str) -> str:
    """Join words split by a hyphen at a line break ("infor-\\nmation" → "information")."""
    return _HYPHENATED.sub(_join, text)


def collapse_whitespace(text: str) -> str:
    """Single spaces inside lines, no blank edges, at most one empty line in a row."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def clean_page(text: str) -> str:
    return collapse_whitespace(dehyphenate(normalize(text)))


def signature(line: str) -> str:
    """What running lines share: "Page 3 of 10" and "Page 4 of 10" are one; long lines never."""
    if len(line) > _RUNNING_MAX_CHARS:
        return ""
    folded = line.lower()
    return "#" if _ROMAN.fullmatch(folded) and folded.strip() else _DIGITS.sub("#", folded)


def _edges(lines: list[str]) -> list[int]:
    """Indexes of the lines a header or footer can occupy (top and bottom two)."""
    n = len(lines)
    return sorted({*range(min(_EDGE_LINES, n)), *range(max(0, n - _EDGE_LINES), n)})


class _Furniture:
    """Decides which edge lines are running headers/footers, from all pages at once."""

    def __init__(self, pages: list[list[str]], margins: list[set[str]]) -> None:
        with_text = [i for i, lines in enumerate(pages) if lines]
        threshold = max(_MIN_PAGES, int(len(with_text) * _RUNNING_SHARE))
        seen: defaultdict[str, list[int]] = defaultdict(list)  # signature → pages (sorted)
        offsets: Counter[int] = Counter()
        for i in with_text:
            lines = pages[i]
            edge = {lines[k] for k in _edges(lines)} | (margins[i] & set(lines))
            sigs = {signature(line) for line in edge} - {""}
            for sig in sigs:
                seen[sig].append(i)
            offsets.update(
                {
                    int(n) - i
                    for line in edge
                    if len(line) <= _RUNNING_MAX_CHARS
                    for n in _NUMBER.findall(line)
                }
            )
        self.seen = seen
        self.everywhere = {sig for sig, where in seen.items() if len(where) >= threshold}
        best = offsets.most_common(1)
        self.offset = best[0][0] if best and best[0][1] >= threshold else None

    def running(self, line: str, page: int) -> bool:
        sig = signature(line)
        if not sig:
            return False
        if sig in self.everywhere:
            return True
        if "#" in sig:
            where = self.seen.get(sig, [])
            lo = bisect_left(where, page - _LOCAL_WINDOW)
            if bisect_right(where, page + _LOCAL_WINDOW) - lo >= _MIN_PAGES:
                return True
            if self.offset is not None and 0 < page + self.offset < _MAX_PAGE_NUMBER:
                return str(page + self.offset) in _NUMBER.findall(line)
        return False


def strip_furniture(pages: list[str], margins: list[set[str]] | None = None) -> list[Cleaned]:
    """Take running headers, footers and page numbers off the top and bottom of every page.

    A line is furniture when it is short, at the top or bottom two lines, and (digits folded)
    repeats on at least half the pages, or carries a number and repeats on three pages close
    together, or holds the page's own number. Lines go from the edges inward, and a page is
    never emptied: when every line would go, all stay.

    `margins[i]`: lines that sit in page i's top or bottom margin by position (the layout
    knows where each line is). They count as edge lines wherever the text order puts them:
    a footer PDFium reads first, or a header drawn after the body.
    """
    split = [page.split("\n") if page else [] for page in pages]
    if sum(1 for lines in split if lines) < _MIN_PAGES:
        return [Cleaned(page) for page in pages]
    margins = margins or [set() for _ in pages]
    furniture = _Furniture(split, margins)
    out = []
    for i, lines in enumerate(split):
        start, end = 0, len(lines)
        while start < min(end, _EDGE_LINES) and furniture.running(lines[start], i):
            start += 1
        while end > max(start, len(lines) - _EDGE_LINES) and furniture.running(lines[end - 1], i):
            end -= 1
        inner = [
            ln for ln in lines[start:end] if not (ln in margins[i] and furniture.running(ln, i))
        ]
        kept = "\n".join(inner).strip()
        if not kept:  # nothing but repeated lines: they are this page's content
            out.append(Cleaned(pages[i]))
            continue
        gone = set(inner)
        removed = [ln for ln in lines[:start] + lines[end:] if ln]
        removed += [ln for ln in lines[start:end] if ln and ln not in gone]
        out.append(Cleaned(kept, removed))
    return out


def clean_pages(pages: list[str], margins: list[set[str]] | None = None) -> list[Cleaned]:
    """Every page cleaned; `margins`: see `strip_furniture` (raw lines, cleaned here too)."""
    marked = (
        [{collapse_whitespace(normalize(ln)) for ln in m} for m in margins] if margins else None
    )
    return strip_furniture([clean_page(p) for p in pages], marked)
