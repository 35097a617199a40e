"""Text cleaning, as pure functions over strings.

`clean_page` fixes one page on its own; `strip_running_lines` needs all pages at once,
because a running header is only recognisable by repeating across pages.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

# NFKC already folds the Latin ligatures (U+FB00..FB06); these are the ones it leaves alone.
_LIGATURES = str.maketrans({"\ua732": "AA", "\ua733": "aa", "\u1d6b": "ue"})
# Invisible characters that break words apart: soft hyphen, zero-width space/joiners, BOM.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_HYPHENATED = re.compile(r"(\w)[-\u2010]\n[ \t]*([a-z])")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_DIGITS = re.compile(r"\d+")

# A line counts as "running" when it opens or closes this share of pages (and at least 3).
_RUNNING_SHARE = 0.5
_EDGE_LINES = 2
_RUNNING_MAX_CHARS = 80  # headers and footers are short; a repeated paragraph is content


def normalize(text: str) -> str:
    """NFKC, ligatures, invisible characters and control characters (newline and tab kept)."""
    text = unicodedata.normalize("NFKC", text).translate(_LIGATURES).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs", "Co")
    )


def dehyphenate(text: str) -> str:
    """Join words split by a hyphen at a line break ("infor-\\nmation" → "information")."""
    return _HYPHENATED.sub(r"\1\2", text)


def collapse_whitespace(text: str) -> str:
    """Single spaces inside lines, no blank edges, at most one empty line in a row."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def clean_page(text: str) -> str:
    return collapse_whitespace(dehyphenate(normalize(text)))


def _signature(line: str) -> str:
    # "Page 3 of 10" and "Page 4 of 10" are the same running line; long lines never run.
    return _DIGITS.sub("#", line.lower()) if len(line) <= _RUNNING_MAX_CHARS else ""


def strip_running_lines(pages: list[str]) -> list[str]:
    """Remove headers/footers: lines at a page's top or bottom that repeat on many pages."""
    with_text = [p for p in pages if p]
    if len(with_text) < 3:
        return pages
    edges: Counter[str] = Counter()
    for page in with_text:
        lines = page.split("\n")
        edges.update({_signature(line) for line in lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]})
    threshold = max(3, int(len(with_text) * _RUNNING_SHARE))
    running = {sig for sig, n in edges.items() if n >= threshold and sig}
    if not running:
        return pages
    return [_strip_edges(page, running) for page in pages]


def _strip_edges(page: str, running: set[str]) -> str:
    lines = page.split("\n")
    start, end = 0, len(lines)
    while start < min(end, _EDGE_LINES) and _signature(lines[start]) in running:
        start += 1
    while end > max(start, len(lines) - _EDGE_LINES) and _signature(lines[end - 1]) in running:
        end -= 1
    return "\n".join(lines[start:end]).strip()


def clean_pages(pages: list[str]) -> list[str]:
    return strip_running_lines([clean_page(p) for p in pages])
