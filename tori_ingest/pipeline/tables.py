"""Tables on one page: ruled ones from their drawn grid, unruled ones from aligned columns.

Both come out as rows of cell strings (the first row is the header when the table has one)
and take their lines off the page, so the text of a table is never a paragraph as well.

* Ruled: rules that touch each other form a grid; its distinct row and column edges cut the
  page's characters into cells (a cell's wrapped lines join with a space). A frame around a
  paragraph (one cell) is not a table.
* Unruled: three or more consecutive lines, each split by wide gaps into two or more pieces
  that fall into the same columns (whitespace that runs down every row). A bulleted list (a
  marker, a gap, the text) and two columns of prose are not tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from tori_ingest.pipeline import markers
from tori_ingest.pipeline.page_lines import Line, PageLayout, Rule, Word

TOUCH = 2.0  # points: rules closer than this meet
EDGE_MERGE = 2.5  # points: edges closer than this are one
MAX_RULES = 1500
STRADDLING = 0.02
MIN_FILLED = 0.4  # of a grid's cells hold text, or it is a drawing's grid (a chart)
MAX_CELL_WORDS = 25  # on average: table cells hold values and phrases
MIN_UNRULED_ROWS = 3
# A gap inside a line wider than this share of the font size separates two cells (or two
# columns); word spaces are about a quarter of it, wide justified spaces rarely pass 1.
CELL_GAP = 1.2
# A piece of a line with this many words, this wide, is prose (a column), not a cell.
PROSE_WORDS = 6
PROSE_WIDTH_SHARE = 0.25


@dataclass
class Piece:
    """A run of a line's characters with no wide gap inside."""

    text: str
    x0: float
    x1: float


@dataclass
class Table:
    rows: list[list[str]]
    bbox: tuple[float, float, float, float]


def pieces(line: Line) -> list[Piece]:
    """The line cut at gaps wider than CELL_GAP times its font size (worked out once)."""
    if line.pieces is None:
        line.pieces = _cut(line)
    return line.pieces


def _cut(line: Line) -> list[Piece]:
    gap = max(4.0, CELL_GAP * (line.size or 10.0))
    out: list[Piece] = []
    run: list[Word] = []
    for char in line.words:
        if char.text.isspace():
            run.append(char)
            continue
        last = next((c for c in reversed(run) if not c.text.isspace()), None)
        if last is not None and char.x0 - last.x1 > gap:
            out.append(_piece(run))
            run = []
        run.append(char)
    if any(not c.text.isspace() for c in run):
        out.append(_piece(run))
    return out


def _piece(chars: list[Word]) -> Piece:
    ink = [c for c in chars if not c.text.isspace()]
    text = " ".join("".join(c.text for c in chars).split())
    return Piece(text, ink[0].x0, ink[-1].x1)


def find_tables(layout: PageLayout) -> tuple[list[Table], list[Line]]:
    """The page's tables and the lines that are not in one."""
    lines = layout.lines
    tables: list[Table] = []
    for grid in _grids(layout.rules):
        table, lines = _fill(grid, lines)
        if table is not None:
            tables.append(table)
    unruled, lines = _unruled(lines, layout.width)
    return tables + unruled, lines


# --- ruled --------------------------------------------------------------------------------


@dataclass
class _Grid:
    ys: list[float]  # row edges, top to bottom
    xs: list[float]  # column edges, left to right

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return (self.xs[0], self.ys[0], self.xs[-1], self.ys[-1])


def _grids(rules: list[Rule]) -> list[_Grid]:
    """Groups of touching rules with at least two rows and two columns of cells."""
    if len(rules) > MAX_RULES:
        return []
    rules = sorted(rules, key=lambda r: r.x0)
    parent = list(range(len(rules)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(rules):  # sorted by x0: stop at the first rule right of `a`
        for j in range(i + 1, len(rules)):
            b = rules[j]
            if b.x0 - TOUCH > a.x1:
                break
            if a.y0 - TOUCH <= b.y1 and b.y0 - TOUCH <= a.y1:
                parent[root(i)] = root(j)
    groups: dict[int, list[Rule]] = {}
    for i, rule in enumerate(rules):
        groups.setdefault(root(i), []).append(rule)
    grids = []
    for group in groups.values():
        ys = _edges([r.y0 for r in group if r.horizontal])
        xs = _edges([r.x0 for r in group if not r.horizontal])
        if len(ys) >= 3 and len(xs) >= 3:
            grids.append(_Grid(ys, xs))
    return grids


def _edges(values: list[float]) -> list[float]:
    edges: list[float] = []
    for value in sorted(values):
        if not edges or value - edges[-1] > EDGE_MERGE:
            edges.append(value)
    return edges


def _fill(grid: _Grid, lines: list[Line]) -> tuple[Table | None, list[Line]]:
    """Put the characters of the lines inside the grid into its cells."""
    x0, y0, x1, y1 = grid.bbox
    inside = [ln for ln in lines if _centre_in(ln, grid.bbox)]
    if not inside or _straddling(inside, grid.xs[1:-1]):
        return None, lines  # empty, or text runs across the "columns": a figure, a frame
    cells: list[list[list[str]]] = [[[] for _ in grid.xs[1:]] for _ in grid.ys[1:]]
    for line in sorted(inside, key=lambda ln: (ln.y0, ln.x0)):
        words: dict[tuple[int, int], list[str]] = {}
        cell: tuple[int, int] | None = None
        for char in line.words:
            if char.text.isspace():  # spaces have no box: they go with the character before
                if cell is not None:
                    words[cell].append(" ")
                continue
            row = _slot(grid.ys, (char.y0 + char.y1) / 2)
            col = _slot(grid.xs, (char.x0 + char.x1) / 2)
            cell = (row, col) if row is not None and col is not None else None
            if cell is not None:
                words.setdefault(cell, []).append(char.text)
        for (row, col), chars in words.items():
            text = " ".join("".join(chars).split())
            if text:
                cells[row][col].append(text)
    rows = [[" ".join(parts) for parts in row] for row in cells]
    rows = [row for row in rows if any(row)]
    filled = [cell for row in rows for cell in row if cell]
    if len(rows) < 2 or len(filled) < MIN_FILLED * len(rows) * len(rows[0]):
        return None, lines
    if sum(len(cell.split()) for cell in filled) > MAX_CELL_WORDS * len(filled):
        return None, lines  # paragraphs in boxes (a frame round two columns), not cells
    kept = [ln for ln in lines if not _centre_in(ln, grid.bbox)]
    return Table(rows, (x0, y0, x1, y1)), kept


def _straddling(lines: list[Line], edges: list[float]) -> bool:
    """Whether more than STRADDLING of the characters sit across a column edge: text never
    crosses a table's rulings, but runs across a figure's lines or a frame's."""
    ink = [c for ln in lines for c in ln.words if not c.text.isspace()]
    across = sum(1 for c in ink if any(c.x0 + 0.5 < x < c.x1 - 0.5 for x in edges))
    return across > STRADDLING * len(ink)


def _centre_in(line: Line, box: tuple[float, float, float, float]) -> bool:
    cx, cy = (line.x0 + line.x1) / 2, (line.y0 + line.y1) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def _slot(edges: list[float], value: float) -> int | None:
    for i in range(len(edges) - 1):
        if edges[i] <= value <= edges[i + 1]:
            return i
    return None


# --- unruled ------------------------------------------------------------------------------


def _unruled(lines: list[Line], width: float) -> tuple[list[Table], list[Line]]:
    ordered = sorted(lines, key=lambda ln: (ln.y0, ln.x0))
    split = {id(ln): _cells(ln, width) for ln in ordered}
    tables: list[Table] = []
    used: set[int] = set()
    run: list[Line] = []
    for line in [*ordered, None]:
        if line is not None and split[id(line)] and (not run or _follows(run[-1], line)):
            run.append(line)
            continue
        if len(run) >= MIN_UNRULED_ROWS:
            table = _aligned(run, split)
            if table is not None:
                tables.append(table)
                used.update(id(ln) for ln in run)
        run = [line] if line is not None and split[id(line)] else []
    return tables, [ln for ln in lines if id(ln) not in used]


def _cells(line: Line, width: float) -> list[Piece]:
    """The line's pieces when it could be a table row (two or more, not prose, not a list,
    not code: aligned comments make no table)."""
    if line.mono:
        return []
    parts = pieces(line)
    if len(parts) >= 2 and markers.MARKER_ONLY.match(parts[0].text):
        parts = parts[1:]
    if len(parts) < 2:
        return []
    if all(_prose(p, width) for p in parts):
        return []
    return parts


def _prose(piece: Piece, width: float) -> bool:
    return (
        len(piece.text.split()) >= PROSE_WORDS
        and (piece.x1 - piece.x0) >= PROSE_WIDTH_SHARE * width
    )


def _follows(above: Line, line: Line) -> bool:
    """The next row of the same table: close below, overlapping horizontally."""
    height = max(above.y1 - above.y0, 1.0)
    return 0 <= line.y0 - above.y1 <= 2.5 * height and line.x0 < above.x1 and above.x0 < line.x1


def _aligned(run: list[Line], split: dict[int, list[Piece]]) -> Table | None:
    """Columns are the whitespace gaps that run down every row of the run; two neighbouring
    ones that no row fills both of are one column (a left-aligned header over right-aligned
    numbers)."""
    spans = sorted((p.x0, p.x1) for ln in run for p in split[id(ln)])
    columns: list[list[float]] = []
    for x0, x1 in spans:
        if columns and x0 <= columns[-1][1]:
            columns[-1][1] = max(columns[-1][1], x1)
        else:
            columns.append([x0, x1])
    rows = [[_column(columns, p) for p in split[id(ln)]] for ln in run]
    merged = _merge_unshared(columns, rows)
    if len(merged) < 2:
        return None
    table: list[list[str]] = []
    for line in run:
        row = [""] * len(merged)
        for piece in split[id(line)]:
            col = _column(merged, piece)
            row[col] = f"{row[col]} {piece.text}".strip()
        table.append(row)
    filled = sum(1 for row in table if sum(1 for cell in row if cell) >= 2)
    if filled * 3 < len(table) * 2:
        return None
    box = (
        min(ln.x0 for ln in run),
        min(ln.y0 for ln in run),
        max(ln.x1 for ln in run),
        max(ln.y1 for ln in run),
    )
    return Table(table, box)


def _column(columns: list[list[float]], piece: Piece) -> int:
    return next((i for i, (a, b) in enumerate(columns) if a <= piece.x0 <= b), len(columns) - 1)


def _merge_unshared(columns: list[list[float]], rows: list[list[int]]) -> list[list[float]]:
    """Join neighbouring columns that no row has text in both of."""
    merged = [list(columns[0])]
    members = [{0}]
    for i in range(1, len(columns)):
        shared = any(i in row and any(j in row for j in members[-1]) for row in map(set, rows))
        if shared:
            merged.append(list(columns[i]))
            members.append({i})
        else:
            merged[-1][1] = columns[i][1]
            members[-1].add(i)
    return merged
