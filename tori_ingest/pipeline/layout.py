"""A document's structure: blocks (title, headings, paragraphs, list items, tables, captions,
code) in reading order, from the positioned lines PDFium gives each page.

Two steps, so the pool keeps only a few numbers per line, never every character:
`analyse_page` runs as each page is extracted (tables need characters and rulings);
`build_blocks` runs once per document after cleaning, because a heading is only a heading
against the document's body text, and running headers and footers are only known from all
pages. Pages read without positions (pypdf's fallback, OCR) give paragraphs from their text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tori_ingest.pipeline import clean, headings, markers, page_lines, tables
from tori_ingest.pipeline.headings import Body
from tori_ingest.pipeline.reading_order import reading_order

Box = tuple[float, float, float, float]
MAX_HEADING_LINES = 3
# A gap between two lines wider than this share of the font size starts a new block.
BLOCK_GAP = 0.75
FULL_LINE = 0.9  # of the page's full line width: a "heading" this wide is a body line
BODY_WORDS, BODY_CHARS = 8, 40  # a paragraph this long is body text a heading can head
MARGIN_SHARE = 0.1  # of the page's height, at the top and at the bottom
EDGE_LINES = 2  # lines at each edge that can be furniture (as cleaning counts them)
# "Figure 3.", "Table 2:", "Fig. 4 - …", "Table 1 Results": not "Figure 7 shows" (body text).
_CAPTION = re.compile(
    r"^(?i:Figure|Fig\.|Table|Tab\.|Chart|Exhibit|Listing)\s*\d+(?:[.:\u2013\u2014-]|\s+[A-Z(])"
)
_SENTENCE_END = (".", "!", "?", ":", '."', ".”")


@dataclass
class TextLine:
    """What layout keeps of a line: its text, box and font."""

    text: str
    box: Box
    size: float
    bold: bool
    mono: bool = False


@dataclass
class PageStructure:
    """One page: its lines outside tables and its tables (or, without positions, its text)."""

    number: int
    width: float = 0.0
    height: float = 0.0
    lines: list[TextLine] = field(default_factory=list)
    tables: list[tables.Table] = field(default_factory=list)
    # A page read without positions (pypdf) or by OCR: its paragraphs, each with its box.
    paragraphs: list[tuple[str, Box]] | None = None


def analyse_page(number: int, layout: page_lines.PageLayout) -> PageStructure:
    found, rest = tables.find_tables(layout)
    lines: list[TextLine] = []
    for line in rest:
        parts = tables.pieces(line)
        if len(parts) >= 2 and all(tables._prose(p, layout.width) for p in parts):
            lines += [_fragment(line, p) for p in parts]  # two columns printed row by row
        else:
            lines.append(TextLine(line.text, line.bbox, line.size, line.bold, line.mono))
    return PageStructure(number, layout.width, layout.height, lines, found)


def _fragment(line: page_lines.Line, piece: tables.Piece) -> TextLine:
    return TextLine(
        piece.text, (piece.x0, line.y0, piece.x1, line.y1), line.size, line.bold, line.mono
    )


def margin_lines(page: PageStructure) -> set[str]:
    """The top and bottom two lines by position, where they sit in the page's outer tenth:
    where running headers and footers are, whatever order the text stream has them in."""
    top, bottom = page.height * MARGIN_SHARE, page.height * (1 - MARGIN_SHARE)
    ordered = sorted(page.lines, key=lambda ln: ln.box[1])
    heads = [ln for ln in ordered[:EDGE_LINES] if ln.box[3] <= top]
    feet = [ln for ln in ordered[-EDGE_LINES:] if ln.box[1] >= bottom]
    return {ln.text for ln in heads + feet}


def plain_page(number: int, text: str, width: float = 0.0, height: float = 0.0) -> PageStructure:
    """A page whose text has no positions: its paragraphs are its blank-line-separated parts."""
    box = (0.0, 0.0, width, height)
    parts = [part for part in re.split(r"\n\s*\n", text) if part.strip()]
    return PageStructure(number, width, height, paragraphs=[(part, box) for part in parts])


# --- the document -------------------------------------------------------------------------


@dataclass
class _Group:
    """Consecutive lines that form one block."""

    kind: str
    lines: list[TextLine]
    level: int | None = None

    @property
    def box(self) -> Box:
        return (
            min(ln.box[0] for ln in self.lines),
            min(ln.box[1] for ln in self.lines),
            max(ln.box[2] for ln in self.lines),
            max(ln.box[3] for ln in self.lines),
        )


def build_blocks(
    pages: list[PageStructure],
    removed: list[list[str]] | None = None,
    outline: Iterable[tuple[int, str, int]] = (),
) -> list[dict[str, Any]]:
    """Blocks in reading order. `removed[i]`: lines cleaning took off page i+1 (furniture, not
    blocks); `outline`: (page number, title, level from 1) of the PDF's bookmarks."""
    removed = removed or [[] for _ in pages]
    kept = [
        _without(page, set(map(_key, gone))) for page, gone in zip(pages, removed, strict=False)
    ]
    body = headings.body_of([(ln.text, ln.size, ln.bold) for page in kept for ln in page.lines])
    marks = {(page, _key(title)): level for page, title, level in outline}
    lines = [ln for page in kept for ln in page.lines]
    mono = sum(len(ln.text) for ln in lines if ln.mono)
    ctx = _Context(body, marks, code_font=mono * 2 < sum(len(ln.text) for ln in lines))
    ordered = [reading_order(_items(page, ctx), _box) for page in kept]
    on_first = {id(i) for i in ordered[0]} if ordered else set()
    _labels_to_paragraphs(
        [item for items in ordered for item in items],
        lambda g: id(g) in on_first and g.lines[0].size >= body.size * headings.TITLE_BIGGER,
    )
    _level([[i for i in items if isinstance(i, _Group)] for items in ordered], body)
    blocks: list[dict[str, Any]] = []
    for page, items in zip(kept, ordered, strict=True):
        if page.paragraphs is not None:
            blocks += _plain_blocks(page)
        else:
            blocks += [_emit(item, page.number) for item in items]
    return blocks


def _items(page: PageStructure, ctx: _Context) -> list[_Group | tables.Table]:
    return [*_groups(page, ctx), *page.tables]


def _box(item: _Group | tables.Table) -> Box:
    return item.box if isinstance(item, _Group) else item.bbox


def _labels_to_paragraphs(
    items: list[_Group | tables.Table], title_like: Callable[[_Group], bool]
) -> None:
    """A heading is followed by what it heads: body text, or a deeper heading that is. Lines
    styled like headings with nothing under them are labels (of a figure, a form) or the lines
    of a paragraph set apart: paragraphs. Bookmarked headings and a title stay."""
    chain: list[_Group] = []
    for item in [*items, None]:
        if isinstance(item, _Group) and item.kind == "heading":
            chain.append(item)
            continue
        heads = item is None or _body(item)  # the document's end: nothing to judge by
        for group, below in zip(chain, [*chain[1:], None], strict=False):
            kept = _deeper(group, below) if below is not None else heads
            if not kept and group.level is None and not title_like(group):
                group.kind = "paragraph"
        chain = []


def _body(item: _Group | tables.Table | None) -> bool:
    if isinstance(item, tables.Table):
        return True
    if item is None or item.kind not in ("list_item", "code", "paragraph"):
        return False
    text = _text(item)
    return item.kind != "paragraph" or len(text.split()) >= BODY_WORDS or len(text) >= BODY_CHARS


def _deeper(group: _Group, below: _Group) -> bool:
    """`below` is a subheading of `group`: smaller, or less set apart, or numbered deeper."""
    a, b = group.lines[0], below.lines[0]
    rank = (round(a.size * 2), a.bold, headings.depth(b.text) <= headings.depth(a.text))
    return rank > (round(b.size * 2), b.bold, False)


def _key(text: str) -> str:
    return " ".join(clean.normalize(text).split()).casefold()


def _without(page: PageStructure, furniture: set[str]) -> PageStructure:
    if not furniture:
        return page
    lines = [ln for ln in page.lines if _key(ln.text) not in furniture]
    paragraphs = page.paragraphs
    if paragraphs is not None:
        paragraphs = [(text, box) for text, box in paragraphs if _key(text) not in furniture]
    return PageStructure(page.number, page.width, page.height, lines, page.tables, paragraphs)


@dataclass(frozen=True)
class _Context:
    """What judging one line needs to know about the document and its page."""

    body: Body
    marks: dict[tuple[int, str], int]  # bookmarks: (page, key) → level
    code_font: bool  # monospace is not the body font: monospaced lines are code
    page: int = 0
    full: float = 0.0  # the width of the page's full lines


def _kind(line: TextLine, ctx: _Context) -> str:
    text = line.text
    if ctx.marks and (ctx.page, _key(text)) in ctx.marks:
        return "outline"
    if _CAPTION.match(text):
        return "caption"
    if line.mono and ctx.code_font:
        return "code"
    out = headings.stands_out(text, line.size, line.bold, ctx.body)
    if out and len(text.split()) > 8:  # a full line of that many words is body text
        out = line.box[2] - line.box[0] < FULL_LINE * ctx.full
    if markers.LIST_ITEM.match(text) and not (headings.depth(text) and out):
        return "list_item"
    return "heading" if out else "paragraph"


def _groups(page: PageStructure, ctx: _Context) -> list[_Group]:
    widths = sorted(ln.box[2] - ln.box[0] for ln in page.lines)
    full = widths[int(0.9 * (len(widths) - 1))] if widths else 0.0
    ctx = _Context(ctx.body, ctx.marks, ctx.code_font, page.number, full)
    groups: list[_Group] = []
    for line in page.lines:
        kind = _kind(line, ctx)
        last = groups[-1] if groups else None
        if last is not None and _continues(last, line, kind):
            last.lines.append(line)
            continue
        level = ctx.marks.get((page.number, _key(line.text))) if kind == "outline" else None
        groups.append(_Group("heading" if kind == "outline" else kind, [line], level))
    for group in groups:  # a long run of "heading" lines is a bold or big paragraph
        if group.kind == "heading" and len(group.lines) > MAX_HEADING_LINES:
            group.kind = "paragraph"
    return _run_in(groups)


def _run_in(groups: list[_Group]) -> list[_Group]:
    """A one-line "heading" as wide as the paragraph lines right under it opens that
    paragraph ("Type specialization: objects. In JavaScript…" set bold at its start)."""
    out: list[_Group] = []
    for group in groups:
        last = out[-1] if out else None
        if (
            last is not None
            and last.kind == "heading"
            and last.level is None
            and len(last.lines) == 1
            and group.kind == "paragraph"
            and _opens(last.lines[0], group.lines[0])
        ):
            out[-1] = _Group("paragraph", [*last.lines, *group.lines])
        else:
            out.append(group)
    return out


def _opens(head: TextLine, first: TextLine) -> bool:
    """`head` starts where `first` starts (or indented) and runs on to its right edge."""
    size = max(head.size, 1.0)
    gap = first.box[1] - head.box[3]
    starts = first.box[0] - 2.0 <= head.box[0] <= first.box[0] + 3 * size
    reaches = head.box[2] >= first.box[2] - 0.15 * (first.box[2] - first.box[0])
    return starts and reaches and -1.0 <= gap <= 0.6 * size


def _continues(group: _Group, line: TextLine, kind: str) -> bool:
    """Whether `line` (of `kind`) goes on the block `group` has begun."""
    prev = group.lines[-1]
    gap = line.box[1] - prev.box[3]
    size = max(prev.size, 1.0)
    if gap < -0.5 * size or gap > BLOCK_GAP * size:
        return False
    if line.box[0] >= prev.box[2] or prev.box[0] >= line.box[2]:  # another column
        return False
    if abs(line.size - prev.size) > 0.1 * size or line.bold != prev.bold:
        return (
            group.kind in ("list_item", "paragraph")
            and kind == "paragraph"
            and _same_size(prev, line)
        )
    if group.kind == "list_item":  # its wrapped lines: indented, or after an unfinished line
        hanging = line.box[0] > group.lines[0].box[0] + 1
        wrapped = not prev.text.endswith(_SENTENCE_END)
        return kind in ("paragraph", "heading") and (hanging or wrapped)
    if group.kind == "paragraph":
        indented = line.box[0] - prev.box[0] > 0.8 * size and prev.text.endswith(_SENTENCE_END)
        return kind == "paragraph" and not indented
    if group.kind == "heading":  # a wrapped heading: the same font, close below
        return kind == "heading" and abs(line.size - prev.size) <= 0.5 and gap <= 0.5 * size
    return kind == group.kind


def _same_size(a: TextLine, b: TextLine) -> bool:
    return abs(a.size - b.size) <= 0.1 * max(a.size, 1.0)


def _level(grouped: list[list[_Group]], body: Body) -> None:
    """Title and heading levels across the whole document."""
    found = [g for groups in grouped for g in groups if g.kind == "heading" and g.level is None]
    if not found:
        return
    styles = [headings.style_of(_text(g), g.lines[0].size, g.lines[0].bold) for g in found]
    biggest = max(s.size for s in styles)
    firsts = [g for g, s in zip(found, styles, strict=True) if s.size == biggest]
    first_page = grouped[0] if grouped else []
    if (
        len(firsts) == 1
        and firsts[0] in first_page
        and biggest >= body.size * headings.TITLE_BIGGER
    ):
        firsts[0].kind = "title"
        keep = [i for i, g in enumerate(found) if g is not firsts[0]]
        found = [found[i] for i in keep]
        styles = [styles[i] for i in keep]
    levels = headings.levels(
        [(s, headings.depth(_text(g))) for s, g in zip(styles, found, strict=True)]
    )
    for group, level in zip(found, levels, strict=True):
        group.level = level


def _text(group: _Group) -> str:
    if group.kind in ("heading", "title"):
        return " ".join(" ".join(ln.text for ln in group.lines).split())
    joined = clean.dehyphenate(clean.normalize("\n".join(ln.text for ln in group.lines)))
    return " ".join(joined.split())


def _emit(item: _Group | tables.Table, page: int) -> dict[str, Any]:
    if isinstance(item, tables.Table):
        rows = [[" ".join(clean.normalize(cell).split()) for cell in row] for row in item.rows]
        return {
            "type": "table",
            "text": "\n".join(" | ".join(row) for row in rows),
            "page": page,
            "bbox": _round(item.bbox),
            "rows": rows,
        }
    block: dict[str, Any] = {
        "type": item.kind,
        "text": _text(item) if item.kind != "code" else "\n".join(ln.text for ln in item.lines),
        "page": page,
        "bbox": _round(item.box),
    }
    if item.kind == "heading":
        block["level"] = item.level or 1
    return block


def _round(box: Box) -> list[float]:
    return [round(v, 1) for v in box]


def _plain_blocks(page: PageStructure) -> list[dict[str, Any]]:
    """Paragraphs of a page read without positions, or by OCR (the engine's paragraphs; one
    it cut mid-sentence, with no more than a line's gap, is joined again)."""
    out: list[dict[str, Any]] = []
    for part, box in page.paragraphs or []:
        text = " ".join(clean.dehyphenate(clean.normalize(part)).split())
        if not text:
            continue
        last = out[-1] if out else None
        if last is not None and _cut_short(last, box, part):
            last["text"] = f"{last['text']} {text}"
            last["bbox"] = _round(_union(tuple(last["bbox"]), box))
            continue
        out.append({"type": "paragraph", "text": text, "page": page.number, "bbox": _round(box)})
    return out


def _cut_short(last: dict[str, Any], box: Box, part: str) -> bool:
    line = (box[3] - box[1]) / (part.strip().count("\n") + 1)  # one line's height
    gap = box[1] - last["bbox"][3]
    return -2 <= gap <= line and not last["text"].endswith(_SENTENCE_END)


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
