"""A document's blocks as Markdown, for people and for LLM prompts.

The blocks already say what each piece is (heading level, list item, table rows), so this is a
direct rendering with no guessing from text. Printed text is escaped where Markdown would read
it as syntax ("1. " or "# " at the start of a paragraph line): what renders is what was printed.
`table_lines` is shared with `chunking`, so a table reads the same in chunks as in Markdown.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

from tori_ingest.core.vocab import BlockType
from tori_ingest.pipeline.markers import BULLETS

# Printed bullets; the typographic ones may sit directly against the text ("•First").
_BULLET = re.compile(rf"^(?:[{BULLETS}]\s+|[\u2022\u25e6\u25aa\u25ab\u2023\u25cf\u25a0\u00b7]\s*)")
_NUMBERED = re.compile(r"^\(?(\d{1,9})[.)]\s+")
# Line starts Markdown reads as syntax: heading, bullet, quote, fence, setext line, rule, HTML.
_SYNTAX = re.compile(
    r"^(?:#{1,6}(?=\s|$)|[-+*](?=\s|$)|>|`{3}|~{3}|=+\s*$|(?:[-*_]\s*){3,}$|<[A-Za-z/!?])"
)
_ORDERED = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
_CLOSING_HASHES = re.compile(r"(^|\s)(#+)$")  # "## Using C #" would lose its "#"
_BACKTICKS = re.compile(r"`+")


def to_markdown(blocks: list[dict[str, Any]]) -> str:
    """Markdown for blocks in reading order; `<!-- page N -->` before each page's first block."""
    has_title = any(block.get("type") == BlockType.TITLE for block in blocks)
    parts: list[tuple[str, str]] = []  # (markdown, list kind: "-", "1." or "" for none)
    page: int | None = None
    for block in blocks:
        rendered = _render(block, has_title)
        if rendered is None:
            continue
        if block.get("page") != page:
            page = block.get("page")
            parts.append((f"<!-- page {page} -->", ""))
        parts.append(rendered)
    if not parts:
        return ""
    out = [parts[0][0]]
    for (_, before), (text, kind) in pairwise(parts):
        out.append("\n" if kind and kind == before else "\n\n")  # one list: no blank line
        out.append(text)
    return "".join(out) + "\n"


def table_lines(rows: list[list[str]]) -> list[str]:
    """A GitHub pipe table: the first row as header, a `---` separator, short rows padded."""
    width = max((len(row) for row in rows), default=0)
    lines = [_row(row, width) for row in rows]
    return [lines[0], _row(["---"] * width, width), *lines[1:]] if lines else []


def _render(block: dict[str, Any], has_title: bool) -> tuple[str, str] | None:
    kind = block.get("type")
    text = str(block.get("text") or "")
    if kind == BlockType.TABLE and any(block.get("rows") or []):
        return "\n".join(table_lines(block["rows"])), ""
    if not text.strip():
        return None
    if kind == BlockType.TITLE:
        return f"# {_heading_text(text)}", ""
    if kind == BlockType.HEADING:
        level = block.get("level")
        depth = (level if isinstance(level, int) and level >= 1 else 1) + int(has_title)
        return f"{'#' * min(depth, 6)} {_heading_text(text)}", ""
    if kind == BlockType.LIST_ITEM:
        return _list_item(_one_line(text))
    if kind == BlockType.CAPTION:
        return "*" + _one_line(text).replace("*", "\\*") + "*", ""
    if kind == BlockType.CODE:
        return _code(text), ""
    if kind == BlockType.FORMULA:
        return "$$\n" + "\n".join(_lines(text)) + "\n$$", ""
    return "\n".join(_escape(line) for line in _lines(text)), ""


def _list_item(text: str) -> tuple[str, str]:
    if bullet := _BULLET.match(text):
        return f"- {_escape(text[bullet.end() :])}", "-"
    if number := _NUMBERED.match(text):
        return f"{number[1]}. {_escape(text[number.end() :])}", "1."
    return f"- {_escape(text)}", "-"  # "a) thing", "iv. thing" or no marker: kept as printed


def _code(text: str) -> str:
    fence = "`" * max([3, *(len(run) + 1 for run in _BACKTICKS.findall(text))])
    body = text.strip("\n").rstrip()
    return f"{fence}\n{body}\n{fence}"


def _escape(line: str) -> str:
    """A backslash where the line's start would otherwise be Markdown syntax."""
    if ordered := _ORDERED.match(line):
        return f"{ordered[1]}\\{ordered[2]}{line[ordered.end() :]}"
    return "\\" + line if _SYNTAX.match(line) else line


def _heading_text(text: str) -> str:
    return _CLOSING_HASHES.sub(r"\1\\\2", _one_line(text))


def _row(cells: list[str], width: int) -> str:
    padded = [_cell(cell) for cell in cells] + [""] * (width - len(cells))
    return "| " + " | ".join(padded) + " |"


def _cell(cell: object) -> str:
    text = str(cell if cell is not None else "").replace("\r\n", "\n").replace("\r", "\n")
    return text.strip().replace("|", "\\|").replace("\n", "<br>")


def _lines(text: str) -> list[str]:
    """Non-blank lines without their indentation (4 spaces would make a code block)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _one_line(text: str) -> str:
    return " ".join(text.split())
