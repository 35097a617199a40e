"""Layout analysis on PDFs the tests make (fpdf2): every block type, every heading style, both
table kinds, two columns, bookmarks, and furniture found by where it sits."""

from __future__ import annotations

from typing import Any

from tori_ingest.core.vocab import Extractor
from tori_ingest.pipeline.clean import clean_pages
from tori_ingest.pipeline.extract import extract
from tori_ingest.pipeline.layout import margin_lines
from tori_ingest.pipeline.reading_order import reading_order
from tori_ingest.pipeline.structure import document_blocks

from ..pdfs import PROSE, Doc


def kinds(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(b["type"], b["text"]) for b in blocks]


def headings(blocks: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return [(b["text"], b.get("level")) for b in blocks if b["type"] in ("title", "heading")]


def test_size_graded_headings_have_levels_and_a_title() -> None:
    doc = Doc()
    doc.text("Quarterly Review", size=22, bold=True)
    doc.text("1 Markets", size=16, bold=True)
    doc.paragraph(PROSE[0] + " " + PROSE[1])
    doc.text("1.1 Europe", size=13, bold=True)
    doc.paragraph(PROSE[2])
    doc.text("2 Outlook", size=16, bold=True)
    doc.paragraph(PROSE[3])
    blocks = document_blocks(doc.output())
    assert blocks[0]["type"] == "title"
    assert headings(blocks) == [
        ("Quarterly Review", None),
        ("1 Markets", 1),
        ("1.1 Europe", 2),
        ("2 Outlook", 1),
    ]
    paragraphs = [b["text"] for b in blocks if b["type"] == "paragraph"]
    assert paragraphs == [PROSE[0] + " " + PROSE[1], PROSE[2], PROSE[3]]


def test_bold_body_size_and_capital_headings_in_a_memo() -> None:
    doc = Doc()
    doc.text("1 Purpose", bold=True)
    doc.paragraph(PROSE[0])
    doc.text("1.1 Scope of the work", bold=True)
    doc.paragraph(PROSE[1])
    doc.text("BACKGROUND")
    doc.paragraph(PROSE[2])
    blocks = document_blocks(doc.output())
    found = dict(headings(blocks))
    assert set(found) == {"1 Purpose", "1.1 Scope of the work", "BACKGROUND"}
    assert found["1 Purpose"] < found["1.1 Scope of the work"]
    assert [b["type"] for b in blocks].count("paragraph") == 3


def test_bulleted_and_numbered_list_items_keep_their_wrapped_lines() -> None:
    long_item = "- " + PROSE[0] + " " + PROSE[1]
    doc = Doc()
    doc.paragraph("Before the list.")
    doc.lines(["- First point", long_item, "- Third point"])
    doc.gap()
    doc.lines(["1. Open the lid", "2. Press start"])
    blocks = document_blocks(doc.output())
    items = [b["text"] for b in blocks if b["type"] == "list_item"]
    assert items == [
        "- First point",
        long_item,
        "- Third point",
        "1. Open the lid",
        "2. Press start",
    ]


def test_a_ruled_table_becomes_rows_and_cells() -> None:
    rows = [["Item", "Qty", "Price"], ["Apple", "3", "1.20"], ["Pear", "10", "0.80"]]
    doc = Doc()
    doc.paragraph(PROSE[0])
    doc.ruled_table(rows)
    doc.paragraph(PROSE[1])
    blocks = document_blocks(doc.output())
    assert [b["type"] for b in blocks] == ["paragraph", "table", "paragraph"]
    assert blocks[1]["rows"] == rows


def test_an_unruled_table_is_found_from_aligned_columns() -> None:
    rows = [
        ["Region", "Sales", "Growth", "Staff"],
        ["North", "120", "4%", "12"],
        ["South", "98", "-2%", "9"],
        ["East", "143", "7%", "15"],
    ]
    doc = Doc()
    doc.paragraph(PROSE[0])
    doc.unruled_table(rows)
    blocks = document_blocks(doc.output())
    tables = [b for b in blocks if b["type"] == "table"]
    assert len(tables) == 1 and tables[0]["rows"] == rows
    assert PROSE[0] in [b["text"] for b in blocks]


def test_two_columns_read_left_column_first_after_a_full_width_title() -> None:
    doc = Doc()
    doc.text("Field Notes", size=20, bold=True)
    doc.columns(
        [("Left Side", PROSE[0] + " " + PROSE[1]), ("More Left", PROSE[2])],
        [("Right Side", PROSE[3] + " " + PROSE[0])],
    )
    blocks = document_blocks(doc.output())
    assert kinds(blocks) == [
        ("title", "Field Notes"),
        ("heading", "Left Side"),
        ("paragraph", PROSE[0] + " " + PROSE[1]),
        ("heading", "More Left"),
        ("paragraph", PROSE[2]),
        ("heading", "Right Side"),
        ("paragraph", PROSE[3] + " " + PROSE[0]),
    ]


def test_captions_and_code_are_their_own_blocks() -> None:
    doc = Doc()
    doc.paragraph(PROSE[0])
    doc.text("Figure 1: Sales by region")
    doc.gap()
    doc.text("print('hello')", font="Courier")
    blocks = document_blocks(doc.output())
    assert ("caption", "Figure 1: Sales by region") in kinds(blocks)
    assert ("code", "print('hello')") in kinds(blocks)


def test_bookmarks_name_headings_and_their_levels() -> None:
    doc = Doc()
    doc.text("Chapter One", bookmark=0)
    doc.paragraph(PROSE[0])
    doc.text("A plain section line", bookmark=1)
    doc.paragraph(PROSE[1])
    blocks = document_blocks(doc.output())
    assert headings(blocks) == [("Chapter One", 1), ("A plain section line", 2)]


def test_running_headers_and_footers_are_not_blocks() -> None:
    doc = Doc()
    for page in range(1, 5):
        doc.page(header="ACME Corp Annual Report", footer=f"Page {page} of 4")
        doc.paragraph(PROSE[page - 1])
    blocks = document_blocks(doc.output())
    texts = [b["text"] for b in blocks]
    assert texts == PROSE
    assert [b["page"] for b in blocks] == [1, 2, 3, 4]


def test_boxes_are_top_left_points_inside_the_page() -> None:
    doc = Doc()
    doc.text("Top line")
    blocks = document_blocks(doc.output())
    x0, y0, x1, y1 = blocks[0]["bbox"]
    assert 0 <= x0 < x1 <= 595.3 and 0 <= y0 < y1 < 100  # A4 width; near the top


def test_reading_order_cuts_columns_before_rows() -> None:
    boxes = {
        "title": (0, 0, 100, 10),
        "l1": (0, 20, 45, 30),
        "l2": (0, 40, 45, 50),
        "r1": (55, 20, 100, 30),
        "r2": (55, 40, 100, 50),
    }
    assert reading_order(list(boxes), boxes.__getitem__) == ["title", "l1", "l2", "r1", "r2"]


def test_a_footer_read_mid_page_is_furniture_by_where_it_sits() -> None:
    doc = Doc()
    bodies = [" ".join(PROSE[i:] + PROSE[:i]) for i in range(4)]
    for page in range(1, 5):
        doc.page()
        doc.paragraph(bodies[page - 1])
        doc.at_bottom(f"Confidential draft {page}")  # in the text between two paragraphs
        doc.paragraph(bodies[page % 4])
    blocks = document_blocks(doc.output())
    expected = [text for page in range(1, 5) for text in (bodies[page - 1], bodies[page % 4])]
    assert [b["text"] for b in blocks] == expected
    raw = extract(doc.output(), extractor=Extractor.PDFIUM)
    cleaned = clean_pages(raw.pages, [margin_lines(s) for s in raw.structures])
    assert [c.removed for c in cleaned] == [[f"Confidential draft {n}"] for n in range(1, 5)]
    unplaced = clean_pages(raw.pages)  # by repetition alone it stays: not at the text's edges
    assert all("Confidential draft" in c.text for c in unplaced)
