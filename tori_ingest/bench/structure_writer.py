"""The PDF writer of the structure benchmark: blocks placed by hand, each with its truth.

`Writer` prints titles, headings, paragraphs, list items, captions and tables onto A4 pages
(fpdf2, core fonts, fixed creation date, so the bytes are deterministic), never splitting a
block across pages, and records every block with the page it landed on (`Doc.truth`). The text
comes from `structure_prose.Prose`; the documents themselves are in `structure_docs`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from tori_ingest.bench.structure_prose import Prose

PAGE_W, PAGE_H = 595.28, 841.89  # A4 in points
MARGIN = 56.0
LEADING = 1.3  # line height / font size
FIXED_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@dataclass
class Doc:
    name: str
    data: bytes
    truth: list[dict[str, Any]]
    furniture: list[str] = field(default_factory=list)  # header/footer lines as printed

    @property
    def pages(self) -> int:
        """The page count the truth implies (every generated page has a block)."""
        return max((int(b["page"]) for b in self.truth), default=0)


class PageLimit(Exception):
    """The document reached its page limit: the block that did not fit is left out."""


class _PDF(FPDF):
    header_text = ""
    footer_text = ""  # "{n}" and "{nb}" become the page number and the page count

    def header(self) -> None:
        if self.header_text:
            self.set_font("Helvetica", "", 8)
            self.set_xy(MARGIN, 24)
            self.cell(0, 10, self.header_text, align="L")
            self.set_xy(MARGIN, MARGIN)

    def footer(self) -> None:
        if self.footer_text:
            self.set_font("Helvetica", "", 8)
            self.set_xy(MARGIN, PAGE_H - 36)
            text = self.footer_text.replace("{n}", str(self.page_no()))
            self.cell(0, 10, text, align="C")


class Writer(Prose):
    """Blocks onto pages, each recorded in the truth with the page it landed on."""

    def __init__(self, seed: int, body: float = 10.0, max_pages: int = 0) -> None:
        super().__init__(seed)
        self.body = body
        self.max_pages = max_pages
        self.truth: list[dict[str, Any]] = []
        pdf = _PDF(unit="pt", format="A4")
        pdf.core_fonts_encoding = "windows-1252"  # bullets and dashes in the core fonts
        pdf.set_creation_date(FIXED_DATE)
        pdf.set_margins(MARGIN, MARGIN, MARGIN)
        pdf.set_auto_page_break(True, MARGIN)
        self.pdf = pdf
        self.columns = False
        self._widths: dict[tuple[str, float, str], float] = {}

    def _font(self, size: float, style: str = "") -> None:
        self.pdf.set_font("Helvetica", style, size)

    def _width(self, word: str) -> float:
        key = (self.pdf.font_style, self.pdf.font_size_pt, word)
        if key not in self._widths:
            self._widths[key] = self.pdf.get_string_width(word)
        return self._widths[key]

    def _lines(self, text: str, size: float, style: str = "", width: float = 0) -> list[str]:
        """Greedy wrapping at spaces, or after a hyphen when a compound does not fit."""
        self._font(size, style)
        width = width or self.pdf.w - self.pdf.r_margin - self.pdf.get_x()
        width -= 2 * self.pdf.c_margin + 0.01
        space = self._width(" ")
        out: list[str] = []
        for source in text.split("\n"):
            line: list[str] = []
            used = 0.0
            words = source.split()
            while words:
                word = words.pop(0)
                need = self._width(word) + (space if line else 0.0)
                if used + need <= width or not line:
                    line.append(word)
                    used += need
                    continue
                head, tail = self._split(word, width - used - space)
                if head:
                    line.append(head)
                    words.insert(0, tail)
                else:
                    words.insert(0, word)
                out.append(" ".join(line))
                line, used = [], 0.0
            out.append(" ".join(line))
        return out

    def _split(self, word: str, room: float) -> tuple[str, str]:
        """The longest part of a hyphenated word up to a hyphen that fits `room`, and the rest."""
        cuts = [k + 1 for k, ch in enumerate(word[:-1]) if ch == "-" and k > 0]
        for cut in reversed(cuts):
            if self._width(word[:cut]) <= room:
                return word[:cut], word[cut:]
        return "", word

    def height(self, text: str, size: float, style: str = "", width: float = 0) -> float:
        return len(self._lines(text, size, style, width)) * size * LEADING

    def _print(self, text: str, size: float, style: str = "", width: float = 0) -> None:
        """The lines of `text` from the current position down, then back to the left margin."""
        pdf = self.pdf
        x = pdf.get_x()
        width = width or pdf.w - pdf.r_margin - x
        for line in self._lines(text, size, style, width):
            pdf.set_x(x)
            pdf.cell(width, size * LEADING, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def fits(self, height: float) -> bool:
        return self.pdf.y + height <= self.pdf.page_break_trigger

    def ensure(self, height: float) -> None:
        """A new page unless `height` fits on this one (blocks are never split)."""
        if self.fits(height):
            return
        if self.columns:
            raise PageLimit
        if self.max_pages and self.pdf.page_no() >= self.max_pages:
            raise PageLimit
        self.pdf.add_page()

    def _record(self, kind: str, text: str, **extra: Any) -> None:
        block: dict[str, Any] = {"type": kind, "text": " ".join(text.split())}
        block["page"] = self.pdf.page_no()
        block["level"] = extra.pop("level", None)
        block.update(extra)
        self.truth.append(block)

    def new_page(self) -> None:
        if self.max_pages and self.pdf.page_no() >= self.max_pages:
            raise PageLimit
        self.pdf.add_page()

    def text_block(
        self,
        kind: str,
        text: str,
        size: float,
        style: str = "",
        level: int | None = None,
        before: float = 0.0,
        after: float | None = None,
        keep: float = 0.0,
    ) -> None:
        height = self.height(text, size, style)
        self.ensure(before + height + keep)
        if self.pdf.y > self.pdf.t_margin + 1:
            self.pdf.ln(before)
        self._record(kind, text, level=level)
        self._print(text, size, style)
        self.pdf.ln(self.body * 0.6 if after is None else after)

    def title(self, text: str, size: float = 20.0, style: str = "B") -> None:
        self.text_block("title", text, size, style, after=size * 0.6)

    def heading(self, text: str, level: int, size: float, style: str = "B") -> None:
        keep = 3 * self.body * LEADING  # a heading stays with the start of its section
        self.text_block("heading", text, size, style, level, before=size * 0.5, keep=keep)

    def paragraph(self, text: str | None = None) -> str:
        text = text or self.paragraph_text()
        self.text_block("paragraph", text, self.body)
        return text

    def caption(self, text: str) -> None:
        keep = 4 * self.body * 1.6  # with the first rows of its table
        self.text_block("caption", text, self.body - 1, "I", after=4, keep=keep)

    def item(self, marker: str, text: str, indent: float = 12.0) -> None:
        pdf = self.pdf
        size = self.body
        hang = 18.0
        width = pdf.w - pdf.l_margin - pdf.r_margin - indent - hang
        height = self.height(text, size, width=width)
        self.ensure(height + 2)
        self._record("list_item", f"{marker} {text}")
        pdf.set_font("Helvetica", "", size)
        left = pdf.l_margin
        pdf.set_x(left + indent)
        pdf.cell(hang, size * LEADING, marker, new_x=XPos.RIGHT, new_y=YPos.TOP)
        self._print(text, size, width=width)
        pdf.ln(2)

    def list_items(self, markers: list[str], low: int = 1, high: int = 3) -> None:
        for marker in markers:
            self.item(marker, self.paragraph_text(low, high))
        self.pdf.ln(self.body * 0.4)

    def table(
        self, rows: list[list[str]], widths: list[float], ruled: bool, numeric: list[bool]
    ) -> None:
        pdf = self.pdf
        size = self.body - 1
        row_h = size * 1.9 if ruled else size * 1.6
        self.ensure(row_h * len(rows) + 4)
        self._record(
            "table",
            "\n".join(" | ".join(row) for row in rows),
            rows=[list(row) for row in rows],
            ruled=ruled,
        )
        margin = pdf.c_margin
        pdf.c_margin = 4.0 if ruled else 9.0  # unruled: the gutter alone shows the columns
        for r, row in enumerate(rows):
            pdf.set_font("Helvetica", "B" if r == 0 else "", size)
            pdf.set_x(pdf.l_margin)
            for text, width, number in zip(row, widths, numeric, strict=True):
                align = "R" if number and r > 0 else "L"
                pdf.cell(
                    width,
                    row_h,
                    text,
                    border=1 if ruled else 0,
                    align=align,
                    new_x=XPos.RIGHT,
                    new_y=YPos.TOP,
                )
            pdf.ln(row_h)
        pdf.c_margin = margin
        pdf.ln(self.body)

    def output(self, name: str, furniture: list[str] | None = None) -> Doc:
        return Doc(name, bytes(self.pdf.output()), self.truth, furniture or [])
