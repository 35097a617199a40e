"""A peer's Markdown as blocks, so the structure benchmark scores it like our own output.

`markdown_blocks` reads what converters such as pymupdf4llm write: ATX headings, list items,
GFM pipe tables, fenced code, paragraphs, and page markers; inline markup is dropped.
"""

from __future__ import annotations

import re
from typing import Any

from tori_ingest.bench.structure_quality import Blocks

_PAGE_MARK = re.compile(r"^<!--\s*page\s+(\d+)\s*-->$", re.IGNORECASE)
_PAGE_RULE = re.compile(r"^-{5,}$")
_ATX = re.compile(r"^(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+(.*)$")
_TABLE_SEP = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_STAR = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])")
_UNDER = re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)")
_CODE = re.compile(r"`([^`]*)`")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def strip_markup(text: str) -> str:
    """Without **bold**, __bold__, *italic*, _italic_ and `code` markup; <br> as a space."""
    text = _BR.sub(" ", text)
    for pattern in (_BOLD, _STAR, _UNDER):
        previous = None
        while previous != text:
            previous = text
            text = pattern.sub(lambda m: m.group(m.lastindex or 1), text)
    text = _CODE.sub(r"\1", text)
    return " ".join(text.split())


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [strip_markup(cell) for cell in line.split("|")]


def markdown_blocks(md: str) -> Blocks:
    """Blocks of Markdown: ATX headings (the first block, if `#`, is the title), list items,
    GFM pipe tables, fenced code, paragraphs split by blank lines; `<!-- page N -->` markers and
    `-----` rules set the page."""
    blocks: Blocks = []
    page = 1
    para: list[str] = []
    table: list[list[str]] = []
    item: list[str] | None = None
    code: list[str] | None = None

    def add(kind: str, text: str, **extra: Any) -> None:
        blocks.append({"type": kind, "text": text, "page": page, "level": None, **extra})

    def flush() -> None:
        nonlocal para, table, item
        if para:
            add("paragraph", strip_markup(" ".join(para)))
        if item is not None:
            add("list_item", strip_markup(" ".join(item)))
        if table:
            rows = [row for row in table if any(row)]
            add("table", "\n".join(" | ".join(r) for r in rows), rows=rows)
        para, table, item = [], [], None

    for raw in md.splitlines():
        line = raw.rstrip()
        if code is not None:
            if _FENCE.match(line):
                add("code", "\n".join(code))
                code = None
            else:
                code.append(line)
            continue
        stripped = line.strip()
        mark = _PAGE_MARK.match(stripped)
        if mark or _PAGE_RULE.match(stripped):
            flush()
            page = int(mark.group(1)) if mark else page + 1
            continue
        if _FENCE.match(line):
            flush()
            code = []
            continue
        if not stripped:
            flush()
            continue
        if stripped.startswith("|"):
            if para or item is not None:
                flush()
            if not _TABLE_SEP.match(stripped):
                table.append(_cells(stripped))
            continue
        if table:
            flush()
        heading = _ATX.match(stripped)
        if heading:
            flush()
            level, text = len(heading.group(1)), strip_markup(heading.group(2))
            if not text:
                continue
            if level == 1 and not blocks:
                add("title", text)
            else:
                add("heading", text, level=level)
            continue
        listed = _ITEM.match(line)
        if listed:
            flush()
            item = [listed.group(1)]
            continue
        if item is not None:  # an item's continuation line (indented or lazy)
            item.append(stripped)
            continue
        para.append(stripped)
    if code is not None:
        add("code", "\n".join(code))
    flush()
    return blocks
