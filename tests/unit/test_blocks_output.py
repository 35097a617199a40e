"""The structured output's two renderings of blocks: Markdown (`to_markdown`) and retrieval
chunks (`chunk_blocks`). Pure: blocks in, strings and dicts out."""

from __future__ import annotations

from typing import Any

import pytest

from tori_ingest.pipeline.chunking import chunk_blocks, sentences
from tori_ingest.pipeline.markdown import table_lines, to_markdown

BOX = [72.0, 72.0, 540.0, 90.0]


def block(kind: str, text: str = "", page: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "text": text, "page": page, "bbox": BOX, **extra}


def table(rows: list[list[str]], page: int = 1) -> dict[str, Any]:
    text = "\n".join(" | ".join(row) for row in rows)
    return block("table", text, page, rows=rows)


def para(text: str, page: int = 1) -> dict[str, Any]:
    return block("paragraph", text, page)


def heading(text: str, level: int, page: int = 1) -> dict[str, Any]:
    return block("heading", text, page, level=level)


# --- Markdown ----------------------------------------------------------------------------------

DOCUMENT = [
    block("title", "Field Guide"),
    heading("Birds", 1),
    para("Birds are warm-blooded.\nMost can fly."),
    block("list_item", "• Feathers"),
    block("list_item", "◦ Beaks"),
    para("Steps to follow:"),
    block("list_item", "1. Look up"),
    block("list_item", "2) Listen"),
    heading("Counts", 2, page=2),
    table([["Species", "Count"], ["Crow | Raven", "12"], ["Owl"]], page=2),
    block("caption", "Table 1: Sightings", 2),
    para("- not a list", 2),
]

EXPECTED = """\
<!-- page 1 -->

# Field Guide

## Birds

Birds are warm-blooded.
Most can fly.

- Feathers
- Beaks

Steps to follow:

1. Look up
2. Listen

<!-- page 2 -->

### Counts

| Species | Count |
| --- | --- |
| Crow \\| Raven | 12 |
| Owl |  |

*Table 1: Sightings*

\\- not a list
"""


def test_markdown_of_a_small_document() -> None:
    assert to_markdown(DOCUMENT) == EXPECTED


def test_markdown_of_nothing_is_empty() -> None:
    assert to_markdown([]) == ""
    assert to_markdown([para("   ")]) == ""


def test_headings_one_deeper_under_a_title_and_clamped_at_six() -> None:
    levels = [heading("A", 1), heading("B", 2), heading("C", 5), heading("D", 9)]
    assert to_markdown(levels) == "<!-- page 1 -->\n\n# A\n\n## B\n\n##### C\n\n###### D\n"
    titled = to_markdown([block("title", "T"), *levels]).split("\n\n")
    assert titled[1:] == ["# T", "## A", "### B", "###### C", "###### D\n"]


def test_a_heading_is_one_line_and_keeps_a_trailing_hash() -> None:
    assert to_markdown([heading("Using\nC #", 1)]).endswith("\n# Using C \\#\n")


@pytest.mark.parametrize("bullet", ["•", "◦", "▪", "-", "\u2013", "*", "·"])
def test_printed_bullets_become_dashes(bullet: str) -> None:
    assert to_markdown([block("list_item", f"{bullet} item")]).endswith("\n- item\n")


@pytest.mark.parametrize(
    ("printed", "markdown"),
    [("3. Third", "3. Third"), ("3) Third", "3. Third"), ("a) thing", "- a) thing")],
)
def test_numbered_items_keep_their_number(printed: str, markdown: str) -> None:
    assert to_markdown([block("list_item", printed)]).endswith(f"\n{markdown}\n")


def test_a_list_changing_kind_starts_a_new_list() -> None:
    # "3." right under "- a" would continue a's text in CommonMark: a blank line between.
    items = [block("list_item", "• a"), block("list_item", "3. b"), block("list_item", "4. c")]
    assert to_markdown(items).endswith("\n- a\n\n3. b\n4. c\n")


def test_tables_escape_pipes_and_newlines_and_pad_short_rows() -> None:
    assert table_lines([["h1", "h2", "h3"], ["a|b", "line\nnext"], ["x"]]) == [
        "| h1 | h2 | h3 |",
        "| --- | --- | --- |",
        "| a\\|b | line<br>next |  |",
        "| x |  |  |",
    ]


@pytest.mark.parametrize(
    ("text", "markdown"),
    [
        ("# not a heading", "\\# not a heading"),
        ("1. not a list", "1\\. not a list"),
        ("2) not a list", "2\\) not a list"),
        ("- not a list", "\\- not a list"),
        ("+ not a list", "\\+ not a list"),
        ("> not a quote", "\\> not a quote"),
        ("---", "\\---"),
        ("```", "\\```"),
        ("    indented", "indented"),
        ("#hashtag, -5 degrees", "#hashtag, -5 degrees"),
        ("2024 was good", "2024 was good"),
    ],
)
def test_paragraph_lines_that_would_be_syntax_are_escaped(text: str, markdown: str) -> None:
    assert to_markdown([para(f"Intro\n{text}")]).endswith(f"\nIntro\n{markdown}\n")


def test_captions_code_and_formulas() -> None:
    blocks = [
        block("caption", "Figure 2: a *star*"),
        block("code", "def f():\n    return '```'"),
        block("formula", "E = mc^2"),
    ]
    assert to_markdown(blocks) == (
        "<!-- page 1 -->\n\n"
        "*Figure 2: a \\*star\\**\n\n"
        "````\ndef f():\n    return '```'\n````\n\n"
        "$$\nE = mc^2\n$$\n"
    )


def test_a_page_marker_before_each_pages_first_block() -> None:
    pages = [para("one"), para("two"), para("three", 2), para("four", 4)]
    assert to_markdown(pages) == (
        "<!-- page 1 -->\n\none\n\ntwo\n\n<!-- page 2 -->\n\nthree\n\n<!-- page 4 -->\n\nfour\n"
    )


# --- chunks ------------------------------------------------------------------------------------


def sentence_text(count: int, start: int = 0, words: int = 8) -> str:
    """`count` sentences of `words` words each, numbered so each one is recognisable."""
    filler = " ".join(["word"] * (words - 2))
    return " ".join(f"Sentence {start + i} {filler}." for i in range(count))


def assert_well_formed(chunks: list[dict[str, Any]]) -> None:
    for chunk in chunks:
        assert chunk["text"].strip()
        assert chunk["words"] == len(chunk["text"].split())
        assert chunk["page_start"] <= chunk["page_end"]


def test_no_blocks_no_chunks() -> None:
    assert chunk_blocks([]) == []
    assert chunk_blocks([para(" "), table([])]) == []


def test_chunks_never_cross_a_top_level_section() -> None:
    blocks = [
        heading("Alpha", 1),
        para("Alpha text."),
        heading("Alpha detail", 2),
        para("More alpha."),
        heading("Beta", 1),
        para("Beta text."),
    ]
    chunks = chunk_blocks(blocks, chunk_words=1000)
    assert_well_formed(chunks)
    assert [chunk["text"] for chunk in chunks] == [
        "Alpha\n\nAlpha text.",
        "Alpha detail\n\nMore alpha.",
        "Beta\n\nBeta text.",
    ]
    for chunk in chunks:
        assert ("lpha" in chunk["text"]) != ("Beta" in chunk["text"])


def test_the_headings_path_with_three_levels_and_a_title() -> None:
    blocks = [
        block("title", "Manual"),
        para("Preface."),
        heading("Install", 1),
        para("How to install."),
        heading("Linux", 2),
        para("On Linux."),
        heading("Debian", 3),
        para("On Debian."),
        heading("macOS", 2),
        para("On macOS."),
        heading("Use", 1),
        para("How to use."),
    ]
    chunks = chunk_blocks(blocks)
    assert_well_formed(chunks)
    assert [(chunk["headings"], chunk["text"]) for chunk in chunks] == [
        (["Manual"], "Manual\n\nPreface."),
        (["Manual", "Install"], "Install\n\nHow to install."),
        (["Manual", "Install", "Linux"], "Linux\n\nOn Linux."),
        (["Manual", "Install", "Linux", "Debian"], "Debian\n\nOn Debian."),
        (["Manual", "Install", "macOS"], "macOS\n\nOn macOS."),
        (["Manual", "Use"], "Use\n\nHow to use."),
    ]


def test_a_heading_with_nothing_under_it_joins_its_subsections_first_chunk() -> None:
    # The title is no section of its own: it goes with "Install" into "Linux"'s first chunk.
    blocks = [block("title", "Manual"), heading("Install", 1), heading("Linux", 2), para("Text.")]
    chunks = chunk_blocks(blocks)
    assert [(chunk["headings"], chunk["text"]) for chunk in chunks] == [
        (["Manual", "Install", "Linux"], "Manual\n\nInstall\n\nLinux\n\nText."),
    ]


def test_blocks_without_headings_have_an_empty_path() -> None:
    chunks = chunk_blocks(
        [para("Just text."), block("list_item", "- a"), block("list_item", "- b")]
    )
    text = "Just text.\n\n- a\n- b"
    assert chunks == [{"text": text, "page_start": 1, "page_end": 1, "headings": [], "words": 6}]


def test_blocks_are_packed_whole_and_chunks_stay_within_chunk_words() -> None:
    blocks = [heading("Section", 1)]
    blocks += [para(sentence_text(3, start=10 * i)) for i in range(12)]  # 24 words each
    blocks += [block("list_item", f"• point {i} of the list") for i in range(10)]
    chunks = chunk_blocks(blocks, chunk_words=50)
    assert_well_formed(chunks)
    assert all(chunk["words"] <= 50 for chunk in chunks)
    assert chunks[0]["text"] == f"Section\n\n{blocks[1]['text']}\n\n{blocks[2]['text']}"
    assert chunks[-1]["text"].endswith("• point 8 of the list\n• point 9 of the list")
    assert sum(chunk["text"].count("Sentence") for chunk in chunks) == 36
    assert sum(chunk["text"].count("• point") for chunk in chunks) == 10


def test_a_long_paragraph_is_cut_at_sentence_ends() -> None:
    long = sentence_text(30)  # 240 words
    chunks = chunk_blocks([heading("Long", 1), para("Short intro here."), para(long)], 50)
    assert_well_formed(chunks)
    assert all(chunk["words"] <= 50 for chunk in chunks)
    assert chunks[0]["text"].startswith("Long\n\nShort intro here.\n\nSentence 0 ")
    for chunk in chunks:
        assert chunk["text"].endswith(".")
        assert sentences(chunk["text"].split("\n\n")[-1])[-1].startswith("Sentence ")
    found = " ".join(chunk["text"].split("\n\n")[-1] for chunk in chunks)
    assert found == long


def test_sentences_are_not_cut_after_abbreviations_or_initials() -> None:
    text = (
        "Dr. Smith met J. Doe, e.g. at home, i.e. not at work. See Fig. 2 and Wu et al. "
        'for more. "Quoted." 3 cats came! Why? Done'
    )
    assert sentences(text) == [
        "Dr. Smith met J. Doe, e.g. at home, i.e. not at work.",
        "See Fig. 2 and Wu et al. for more.",
        '"Quoted."',
        "3 cats came!",
        "Why?",
        "Done",
    ]
    assert sentences("Version 2.5 is out. it continues. Next one.") == [
        "Version 2.5 is out. it continues.",
        "Next one.",
    ]


def test_a_sentence_longer_than_a_chunk_is_cut_between_words() -> None:
    words = [f"w{i}" for i in range(120)]
    chunks = chunk_blocks([para(" ".join(words) + ".")], chunk_words=50)
    assert [chunk["words"] for chunk in chunks] == [50, 50, 20]
    assert " ".join(chunk["text"] for chunk in chunks).split() == [*words[:-1], "w119."]


def test_a_table_that_fits_stays_whole_in_one_chunk() -> None:
    rows = [["Name", "Qty"], ["apples", "3"], ["pears", "5"]]
    chunks = chunk_blocks([heading("Stock", 1), para("What we have."), table(rows)], 50)
    assert len(chunks) == 1
    assert chunks[0]["text"] == "Stock\n\nWhat we have.\n\n" + "\n".join(table_lines(rows))


def test_a_table_that_does_not_fit_what_is_left_gets_its_own_chunk() -> None:
    rows = [["Name", "Qty"], ["apples", "3"], ["pears", "5"]]  # 20 words as a pipe table
    blocks = [para(sentence_text(4)), table(rows), para("After the table.")]
    chunks = chunk_blocks(blocks, chunk_words=40)
    assert [chunk["text"] for chunk in chunks] == [
        sentence_text(4),
        "\n".join(table_lines(rows)),
        "After the table.",
    ]


def test_a_long_table_is_cut_by_rows_under_its_header() -> None:
    header = ["Item", "Qty"]
    rows = [header] + [[f"item-{i}", str(i)] for i in range(59)]  # 60 rows
    chunks = chunk_blocks([heading("Inventory", 1, page=3), table(rows, page=3)], 50)
    assert_well_formed(chunks)
    assert len(chunks) > 1
    head = table_lines(rows)[:2]
    seen: list[str] = []
    for chunk in chunks:
        assert chunk["words"] <= 50
        assert chunk["headings"] == ["Inventory"]
        assert (chunk["page_start"], chunk["page_end"]) == (3, 3)
        lines = chunk["text"].removeprefix("Inventory\n\n").split("\n")
        assert lines[:2] == head
        seen += lines[2:]
    assert chunks[0]["text"].startswith("Inventory\n\n| Item | Qty |")
    assert seen == table_lines(rows)[2:]  # every row once, in order


def test_the_one_unit_allowed_over_chunk_words_is_a_header_and_one_row() -> None:
    # A table row is never cut: the header (10 words) and a 34-word row make a 44-word piece.
    wide = " ".join(["wide"] * 30)
    rows = [["Key", "Value"], ["a", wide], ["b", "short"]]
    chunks = chunk_blocks([table(rows)], chunk_words=20)
    assert [chunk["words"] for chunk in chunks] == [44, 15]
    assert all(chunk["text"].startswith("| Key | Value |\n| --- | --- |") for chunk in chunks)


def test_code_too_long_for_a_chunk_is_cut_between_lines() -> None:
    code = "\n".join(f"x{i} = {i}  # x{i}" for i in range(20))  # 5 words a line
    chunks = chunk_blocks([block("code", code)], chunk_words=22)
    assert [chunk["words"] for chunk in chunks] == [20, 20, 20, 20, 20]
    assert "\n".join(chunk["text"] for chunk in chunks) == code


def test_pages_spanned_by_a_chunk() -> None:
    blocks = [heading("Spread", 1, page=2), para("On two.", 2), para("On three.", 3)]
    blocks += [para("On four.", 4), heading("Next", 1, page=4), para("Still four.", 4)]
    chunks = chunk_blocks(blocks)
    assert [(chunk["page_start"], chunk["page_end"]) for chunk in chunks] == [(2, 4), (4, 4)]
