"""The structure benchmark: generated documents with known structure, and its metrics."""

from __future__ import annotations

import io
import json
from typing import Any

import pypdf
import pypdfium2 as pdfium
import pytest

from tori_ingest.bench import structure_docs as sd
from tori_ingest.bench import structure_markdown as sm
from tori_ingest.bench import structure_quality as sq
from tori_ingest.bench import structure_section as ss

Block = dict[str, Any]


@pytest.fixture(scope="module")
def docs() -> list[sd.Doc]:
    return sd.structure_set()


# --- the generator ---------------------------------------------------------------------------


def test_generator_is_deterministic(docs: list[sd.Doc]) -> None:
    again = sd.structure_set()
    assert [d.name for d in docs] == [d.name for d in again]
    assert [d.truth for d in docs] == [d.truth for d in again]
    assert [d.data for d in docs] == [d.data for d in again]


def test_every_document_opens_with_the_pages_its_truth_implies(docs: list[sd.Doc]) -> None:
    for doc in docs:
        reader = pypdf.PdfReader(io.BytesIO(doc.data))
        assert len(reader.pages) == doc.pages, doc.name
        assert {b["page"] for b in doc.truth} == set(range(1, doc.pages + 1)), doc.name


def test_the_set_covers_every_kind_of_structure(docs: list[sd.Doc]) -> None:
    by_name = {d.name: d for d in docs}
    assert len(docs) >= 8
    kinds = {b["type"] for d in docs for b in d.truth}
    assert {"title", "heading", "paragraph", "list_item", "table"} <= kinds
    report = by_name["ten-page-report"]
    assert report.pages == 10
    assert {b["level"] for b in report.truth if b["type"] == "heading"} == {1, 2, 3}
    tables = [b for d in docs for b in d.truth if b["type"] == "table"]
    assert {b["ruled"] for b in tables} == {True, False}
    assert all(len(b["rows"]) >= 7 and len(b["rows"][0]) >= 4 for b in tables)
    furniture = by_name["running-furniture"]
    assert furniture.pages >= 4
    assert "Page 2 of 4" in furniture.furniture


def test_truth_text_is_what_is_printed_and_furniture_is_not_a_block(docs: list[sd.Doc]) -> None:
    for doc in docs:
        pdf = pdfium.PdfDocument(doc.data)
        pages = [sq.normalize(pdf[k].get_textpage().get_text_range()) for k in range(len(pdf))]
        for block in doc.truth:
            page = pages[block["page"] - 1]
            if block["type"] == "table":
                for cell in (c for row in block["rows"] for c in row):
                    assert sq.normalize(cell) in page, (doc.name, cell)
            else:
                assert sq.normalize(block["text"]) in page, (doc.name, block["text"][:40])
        for line in doc.furniture:
            assert line not in {b["text"] for b in doc.truth}
            assert any(sq.normalize(line) in page for page in pages), line


# --- the metrics -----------------------------------------------------------------------------


def _h(text: str, level: int | None, page: int = 1, kind: str = "heading") -> Block:
    return {"type": kind, "text": text, "page": page, "level": level}


def _p(text: str, page: int = 1) -> Block:
    return {"type": "paragraph", "text": text, "page": page, "level": None}


TRUTH: list[Block] = [
    _h("Annual Review", None, kind="title"),
    _h("1 Introduction", 1),
    _p("The regional budget supports the annual review of every site in the north."),
    _h("1.1 Scope", 2),
    _p("Each warehouse reports its figures to the central office at the end of the month."),
    _h("1.1.1 Sites", 3),
    {"type": "list_item", "text": "\u2022 Alpine depot near the border", "page": 1, "level": None},
    {"type": "list_item", "text": "2) Coastal terminal", "page": 1, "level": None},
    _h("2 Results", 1, page=2),
    {
        "type": "table",
        "text": "",
        "page": 2,
        "level": None,
        "ruled": True,
        "rows": [["Region", "Tons", "Staff"], ["North", "1,204", "12"], ["South", "880", "9"]],
    },
    _p("Costs went down in the second half of the year after the new contract started.", 2),
]


def test_a_perfect_prediction_scores_one() -> None:
    got = sq.score(TRUTH, TRUTH)
    for key in (
        "heading_precision",
        "heading_recall",
        "heading_f1",
        "level_agreement",
        "list_recall",
        "table_cells_ruled",
        "reading_order",
    ):
        assert got[key] == 1.0, key
    assert got["table_cells_unruled"] is None  # no unruled table in the truth


def test_a_missed_heading_lowers_recall_by_one_in_n() -> None:
    headings = [b for b in TRUTH if b["type"] in ("title", "heading")]
    predicted = [b for b in TRUTH if b["text"] != "1.1 Scope"]
    got = sq.score(TRUTH, predicted)
    assert got["heading_recall"] == round((len(headings) - 1) / len(headings), 4)
    assert got["heading_precision"] == 1.0


def test_headings_match_by_normalised_text_and_page() -> None:
    predicted = [
        _h("1  INTRODUCTION:", 1),  # case, spaces, trailing punctuation
        _h("Introduction", 1),  # numbering is kept: not a match
        _h("2 Results", 1, page=1),  # wrong page
    ]
    truth = [_h("1 Introduction", 1), _h("2 Results", 1, page=2)]
    got = sq.score(truth, predicted)
    assert got["heading_recall"] == 0.5
    assert got["heading_precision"] == round(1 / 3, 4)
    assert got["heading_f1"] == 0.4


def test_levels_are_compared_by_rank() -> None:
    truth = [_h("Title", None, kind="title"), _h("A", 1), _h("B", 2), _h("C", 3)]
    shifted = [_h("Title", None, kind="title"), _h("A", 2), _h("B", 3), _h("C", 4)]
    assert sq.score(truth, shifted)["level_agreement"] == 1.0
    flat = [_h("Title", 1), _h("A", 2), _h("B", 2), _h("C", 3)]
    # the title taken for a heading disagrees; A (rank 0 of 2, 3) agrees; B (rank 0) does not;
    # C (rank 1, truth rank 2) does not
    assert sq.score(truth, flat)["level_agreement"] == 0.25


def test_list_items_are_found_without_their_markers() -> None:
    truth = [
        {"type": "list_item", "text": "\u2022 Check the gate", "page": 1},
        {"type": "list_item", "text": "a) Sign the log", "page": 1},
        {"type": "list_item", "text": "3. Lock the door", "page": 1},
    ]
    predicted = [
        {"type": "list_item", "text": "- Check the gate", "page": 1},
        {"type": "list_item", "text": "Sign the log", "page": 1},
        {"type": "paragraph", "text": "3. Lock the door", "page": 1},  # not a list item
    ]
    assert sq.score(truth, predicted)["list_recall"] == round(2 / 3, 4)


def _table(rows: list[list[str]], page: int = 1, **extra: Any) -> Block:
    return {"type": "table", "text": "", "page": page, "level": None, "rows": rows, **extra}


ROWS = [["Region", "Tons", "Staff"], ["North", "1,204", "12"], ["South", "880", "9"]]


def test_table_cells_one_wrong_cell() -> None:
    wrong = [row[:] for row in ROWS]
    wrong[2][1] = "88O"
    got = sq.score([_table(ROWS, ruled=False)], [_table(wrong)])
    assert got["table_cells_unruled"] == round(8 / 9, 4)
    assert got["table_cells_ruled"] is None


def test_table_cells_count_the_union_of_both_shapes() -> None:
    extra_column = [[*row, ""] for row in ROWS]
    assert sq.table_score(ROWS, extra_column) == (9, 12)
    assert sq.table_score(ROWS, ROWS[:2]) == (6, 9)


def test_a_missed_table_scores_zero_and_tables_match_on_their_page() -> None:
    truth = [_table(ROWS, page=1, ruled=True), _table(ROWS, page=2, ruled=False)]
    got = sq.score(truth, [_table(ROWS, page=2)])
    assert got["table_cells_ruled"] == 0.0
    assert got["table_cells_unruled"] == 1.0
    assert got["table_cells"] == 0.5


def test_reading_order_with_one_swap() -> None:
    paragraphs = [
        _p(f"Paragraph {k} talks about the {k}th warehouse and its annual budget review")
        for k in range(1, 6)
    ]
    swapped = [paragraphs[0], paragraphs[2], paragraphs[1], paragraphs[3], paragraphs[4]]
    assert sq.score(paragraphs, swapped)["reading_order"] == 0.75
    assert sq.order_positions(paragraphs, swapped[:4]) == [0, 2, 1, 3, -1]


def test_reading_order_finds_blocks_by_their_first_eight_words() -> None:
    truth = [_p("one two three four five six seven eight nine"), _p("alpha beta gamma")]
    merged = [_p("alpha beta gamma. One two three four five six seven eight")]
    assert sq.order_positions(truth, merged) == [0, 0]
    assert sq.score(truth, merged)["reading_order"] == 1.0


def test_wrapped_hyphens_and_furniture() -> None:
    assert sq.normalize("cross\ufffeborder  Policy") == sq.normalize("cross- border policy")
    assert sq.normalize("state-of-the-art") == sq.normalize("state-of-theart")
    leaked = [_p("ACME Corp \u2014 Annual Report"), _p("Body text Page 2 of 4")]
    furniture = ["ACME Corp \u2014 Annual Report"] * 4 + ["Page 1 of 4", "Page 2 of 4"]
    assert sq.furniture_counts(furniture, leaked) == (2, 6)


def test_micro_average_sums_counts_over_documents() -> None:
    one = [_h("A", 1), _h("B", 1)]
    two = [_h("C", 1), _h("D", 1), _h("E", 1), _h("F", 1)]
    got = sq.score_all([(one, one[:1]), (two, two)])
    assert got["heading_recall"] == round(5 / 6, 4)  # not the mean of 0.5 and 1.0


# --- Markdown --------------------------------------------------------------------------------

SAMPLE = """# **Annual Review**

Intro text with **bold** and _italic_ words
over two lines.

## 1 Introduction

- first item
  continues here
* second item
1. numbered item

<!-- page 2 -->

### _1.1 Scope_

| **Region** | Tons |
|---|---:|
| North | 1,204 |

-----

Last paragraph.
"""


def test_markdown_blocks_parses_a_sample_exactly() -> None:
    def b(kind: str, text: str, page: int, level: int | None = None, **extra: Any) -> Block:
        return {"type": kind, "text": text, "page": page, "level": level, **extra}

    assert sm.markdown_blocks(SAMPLE) == [
        b("title", "Annual Review", 1),
        b("paragraph", "Intro text with bold and italic words over two lines.", 1),
        b("heading", "1 Introduction", 1, 2),
        b("list_item", "first item continues here", 1),
        b("list_item", "second item", 1),
        b("list_item", "numbered item", 1),
        b("heading", "1.1 Scope", 2, 3),
        b(
            "table",
            "Region | Tons\nNorth | 1,204",
            2,
            rows=[["Region", "Tons"], ["North", "1,204"]],
        ),
        b("paragraph", "Last paragraph.", 3),
    ]


def test_a_level_one_heading_is_a_title_only_as_the_first_block() -> None:
    blocks = sm.markdown_blocks("Some text\n\n# Big heading\n")
    assert [(x["type"], x["level"]) for x in blocks] == [("paragraph", None), ("heading", 1)]


# --- the real-world hand list ----------------------------------------------------------------


def test_the_hand_list_is_well_formed() -> None:
    data = json.loads(ss.TRUTH_FILE.read_text(encoding="utf-8"))
    assert 3 <= len(data["files"]) <= 5
    for sha, entry in data["files"].items():
        assert len(sha) == 64 and entry["file"].endswith(".pdf")
        assert entry["headings"] and all(h["text"] and h["page"] >= 1 for h in entry["headings"])


def test_real_world_counts_are_strict_and_show_a_flood() -> None:
    expected = [{"text": "1 Introduction", "page": 1}, {"text": "2 Method", "page": 2}]
    predicted = [_h("1 Introduction", 1)] + [_h(f"Noise {k}", 1) for k in range(4)]
    got = sq.real_world_counts(expected, predicted, pages=2)
    assert got["heading_recall"] == 0.5
    assert got["heading_precision"] == 0.2
    assert got["headings_per_page"] == 2.5
    assert got["max_headings_on_a_page"] == 5


def test_list_items_continue_on_unindented_lines_until_a_blank_line() -> None:
    blocks = sm.markdown_blocks("  - first line\nsecond line\n\nA paragraph.\n")
    assert [(x["type"], x["text"]) for x in blocks] == [
        ("list_item", "first line second line"),
        ("paragraph", "A paragraph."),
    ]
