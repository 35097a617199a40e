"""PDFs with known structure for the structure benchmark (fpdf2, deterministic, no network).

Each document comes with its truth: the blocks a reader sees, in reading order, in the schema of
the structured output (`type`, `text`, `page`, `level`, `rows`; tables also say `ruled`). Every
block is placed by hand and never split across pages, so its page is exact; the text of a block
is the string that was printed (wrapped by fpdf2, so compare with whitespace normalised). Page
furniture (running headers and footers) is listed apart in `Doc.furniture`, never as a block.

The documents, one cue each: headings by size; bold headings at body size, numbered; ALL-CAPS
headings at body size; bullet and numbered lists with wrapping items; a ruled and an unruled
table; two columns; running headers and footers; a ten-page report with three heading levels.
Each is a recipe for `structure_writer.Writer`, which places the blocks and records the truth.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tori_ingest.bench.structure_writer import MARGIN, PAGE_W, Doc, PageLimit, Writer


def size_graded(seed: int = 1) -> Doc:
    """(a) Title 20 pt, H1 16 pt bold, H2 13 pt bold, body 10 pt."""
    w = Writer(seed)
    w.new_page()
    w.title("Regional Operations Review 2023", 20)
    for _ in range(3):
        w.heading(w.topic(), 1, 16)
        w.paragraph()
        for _ in range(2):
            w.heading(w.topic(), 2, 13)
            w.paragraph()
            w.paragraph()
    return w.output("size-graded")


def memo(seed: int = 2) -> Doc:
    """(b) Headings bold at body size (11 pt), numbered 1, 2, 2.1."""
    w = Writer(seed, body=11.0)
    w.new_page()
    w.title("Memorandum", 16)
    w.paragraph(
        "To: All regional managers\nFrom: Planning office\n"
        "Date: 12 March 2024\nSubject: Supplier review and next steps"
    )
    plan = [
        ("1 Introduction", 1, 1),
        ("2 Background", 1, 1),
        ("2.1 Scope", 2, 2),
        ("2.2 Definitions", 2, 1),
        ("3 Proposal", 1, 1),
        ("3.1 Timeline", 2, 1),
        ("3.2 Budget", 2, 2),
        ("4 Next Steps", 1, 1),
    ]
    for text, level, paragraphs in plan:
        w.heading(text, level, 11)
        for _ in range(paragraphs):
            w.paragraph()
    return w.output("memo-bold-body-size")


def all_caps(seed: int = 3) -> Doc:
    """(c) ALL-CAPS headings in the body font and size (not bold)."""
    w = Writer(seed)
    w.new_page()
    w.title("Field Survey Summary", 16)
    for _ in range(6):
        w.heading(w.topic().upper(), 1, 10, style="")
        for _ in range(w.rng.randint(1, 2)):
            w.paragraph()
    return w.output("all-caps-headings")


def lists(seed: int = 4) -> Doc:
    """(d) Bullet lists (•, -) and numbered lists (1., 2), a)); items wrap over lines."""
    w = Writer(seed)
    w.new_page()
    w.title("Site Readiness Checklist", 18)
    w.heading("Before the Visit", 1, 14)
    w.paragraph(w.paragraph_text(2, 3))
    w.list_items(["\u2022"] * 4, 1, 3)
    w.paragraph(w.paragraph_text(2, 3))
    w.list_items(["-"] * 3, 1, 2)
    w.heading("During the Visit", 1, 14)
    w.paragraph(w.paragraph_text(2, 3))
    w.list_items([f"{k}." for k in range(1, 6)], 1, 3)
    w.paragraph(w.paragraph_text(2, 3))
    w.list_items([f"{k})" for k in range(1, 4)], 1, 2)
    w.heading("After the Visit", 1, 14)
    w.paragraph(w.paragraph_text(2, 3))
    w.list_items(["a)", "b)", "c)", "d)"], 1, 3)
    w.paragraph(w.paragraph_text(2, 3))
    return w.output("lists")


def tables(seed: int = 5) -> Doc:
    """(e) A ruled table (borders, bold header) and an unruled one (aligned columns)."""
    w = Writer(seed)
    w.new_page()
    w.title("Quarterly Figures by Region", 18)
    w.paragraph()
    w.caption("Table 1: Shipments and staff by region, second quarter")
    rows, numeric = w.table_rows(5, 7)
    w.table(rows, [90, 80, 80, 80, 80], True, numeric)
    w.paragraph()
    w.caption("Table 2: Orders and hours by region, third quarter")
    rows, numeric = w.table_rows(4, 8)
    w.table(rows, [100, 90, 90, 90], False, numeric)
    w.paragraph()
    return w.output("tables")


def two_columns(seed: int = 6) -> Doc:
    """(f) A full-width title and heading over two columns with headings inside them."""
    w = Writer(seed)
    pdf = w.pdf
    gap = 20.0
    col = (PAGE_W - 2 * MARGIN - gap) / 2
    for page in range(2):
        w.new_page()
        if page == 0:
            w.title("Annual Infrastructure Bulletin", 20)
            w.heading("Summary of the Year", 1, 14)
        top = pdf.y
        for c in range(2):
            pdf.set_left_margin(MARGIN + c * (col + gap))
            pdf.set_right_margin(PAGE_W - MARGIN - c * (col + gap) - col)
            pdf.set_xy(pdf.l_margin, top)
            w.columns = True
            try:
                _fill_column(w, first_heading=True)
            finally:
                w.columns = False
        pdf.set_margins(MARGIN, MARGIN, MARGIN)
    return w.output("two-columns")


def _fill_column(w: Writer, first_heading: bool) -> None:
    """Headings and paragraphs down one column while they fit (a heading with its paragraph)."""
    heading = first_heading
    while True:
        text = w.paragraph_text(2, 4)
        need = w.height(text, w.body) + w.body
        if heading:
            topic = w.topic()
            need += w.height(topic, 12, "B") + 12 * 1.5
            if not w.fits(need):
                return
            w.heading(topic, 2, 12)
        if not w.fits(need):
            return
        w.paragraph(text)
        heading = w.rng.random() < 0.3


def _report(w: Writer, numbered: bool, tables_every: int = 0) -> None:
    """Sections until the page limit: headings, paragraphs, lists and now and then a table."""
    section = 0
    try:
        while True:
            section += 1
            unnumbered = section % 4 == 0
            h1 = w.topic() if unnumbered or not numbered else f"{section} {w.topic()}"
            w.heading(h1, 1, 15)
            w.paragraph()
            for sub in range(1, w.rng.randint(2, 3) + 1):
                h2 = w.topic()
                w.heading(h2 if unnumbered or not numbered else f"{section}.{sub} {h2}", 2, 12)
                w.paragraph()
                if w.rng.random() < 0.5:
                    h3 = w.topic()
                    label = f"{section}.{sub}.1 {h3}" if numbered and not unnumbered else h3
                    w.heading(label, 3, 10, style="BI")
                    w.paragraph()
                if w.rng.random() < 0.35:
                    marker = w.rng.choice(["\u2022", "-", "1."])
                    count = w.rng.randint(2, 4)
                    markers = (
                        [f"{k}." for k in range(1, count + 1)]
                        if marker == "1."
                        else [marker] * count
                    )
                    w.list_items(markers, 1, 2)
                if tables_every and section % tables_every == 0 and sub == 1:
                    ruled = section // tables_every % 2 == 1
                    rows, numeric = w.table_rows(4, 6)
                    w.table(rows, [100, 90, 90, 90], ruled, numeric)
                w.paragraph()
    except PageLimit:  # the page limit: the block that did not fit was not printed
        pass


def furniture(seed: int = 7) -> Doc:
    """(g) Header "ACME Corp — Annual Report" and footer "Page N of M" on each of 4 pages."""
    w = Writer(seed, max_pages=4)
    w.pdf.header_text = "ACME Corp \u2014 Annual Report"
    w.pdf.footer_text = "Page {n} of {nb}"
    w.pdf.set_auto_page_break(True, MARGIN + 10)
    w.new_page()
    w.title("Annual Report 2023", 20)
    _report(w, numbered=False)
    pages = w.pdf.page_no()
    lines = [w.pdf.header_text] * pages + [f"Page {n} of {pages}" for n in range(1, pages + 1)]
    return w.output("running-furniture", lines)


def long_report(seed: int = 8) -> Doc:
    """(h) Ten pages: three heading levels (numbered and not), paragraphs, lists, tables."""
    w = Writer(seed, max_pages=10)
    w.new_page()
    w.title("Network Modernisation Programme: Final Report", 20)
    _report(w, numbered=True, tables_every=2)
    return w.output("ten-page-report")


GENERATORS: tuple[Callable[[], Doc], ...] = (
    size_graded,
    memo,
    all_caps,
    lists,
    tables,
    two_columns,
    furniture,
    long_report,
)


def structure_set() -> list[Doc]:
    """Every document of the benchmark, in a fixed order."""
    return [make() for make in GENERATORS]


def write_set(folder: Path) -> list[tuple[Doc, Path]]:
    """The documents as files (for tools that read paths), with their truth."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for doc in structure_set():
        path = folder / f"{doc.name}.pdf"
        path.write_bytes(doc.data)
        out.append((doc, path))
    return out
