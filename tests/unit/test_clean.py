"""Cleaning rules of SPEC §5, one by one, on exact strings and on generated PDFs."""

from pathlib import Path

import pytest
from fpdf import FPDF

from tests.pdfs import make_pdf
from tori_ingest.bench.quality_docs import font_path
from tori_ingest.pipeline import clean, extract

FONT = Path(font_path()) if font_path() else None


def test_nfkc_and_ligatures() -> None:
    assert clean.normalize("e\ufb03cient \ufb01sh \ufb02ow") == "efficient fish flow"
    assert clean.normalize("\uff21\uff22\uff23 \u00bd") == "ABC 1\u20442"
    assert clean.normalize("\ua732rhus") == "AArhus"


def test_control_and_invisible_characters_dropped() -> None:
    assert clean.normalize("a\x00b\x07c\u200bd\u00ade\ufeff") == "abcde"
    assert clean.normalize("line\r\nnext\rlast\tcol") == "line\nnext\nlast\tcol"


def test_dehyphenation_only_joins_lowercase_continuations() -> None:
    assert clean.dehyphenate("infor-\nmation") == "information"
    assert clean.dehyphenate("infor-\n   mation") == "information"
    assert clean.dehyphenate("Jean-\nPaul") == "Jean-\nPaul"
    assert clean.dehyphenate("well-known") == "well-known"


def test_whitespace_normalisation() -> None:
    assert clean.collapse_whitespace("  a   b\t c  \n\n\n\n d  ") == "a b c\n\nd"


def test_clean_page_combines_all_rules() -> None:
    assert clean.clean_page(" The \ufb01rst  inter-\nnational\x0c  meeting ") == (
        "The first international meeting"
    )


WORDS = ["alpha", "bravo", "charlie", "delta", "echo"]


def test_running_headers_and_footers_removed() -> None:
    pages = [
        f"ACME Corp Annual Report\nBody about {w}.\nPage {i} of 5" for i, w in enumerate(WORDS)
    ]
    assert _stripped(pages) == [f"Body about {w}." for w in WORDS]


def test_running_lines_need_enough_pages_and_stay_in_the_body() -> None:
    two = ["Header\nBody one", "Header\nBody two"]
    assert _stripped(two) == two  # too few pages to tell
    # A repeated line in the middle of a page is content, not a header.
    pages = [f"Top {w}\nSecond {w}\nRepeated line\nFourth {w}\nBottom {w}" for w in WORDS]
    assert _stripped(pages) == pages


def test_long_repeated_lines_are_content() -> None:
    long_line = "A long repeated sentence that is clearly part of the body text of each page."
    long_line += " It keeps going."
    pages = [f"{long_line}\nunique {w}" for w in WORDS]
    assert _stripped(pages) == pages


def test_empty_pages_stay_empty_and_in_place() -> None:
    pages = ["Head\nA", "", "Head\nB", "Head\nC"]
    assert _stripped(pages) == ["A", "", "B", "C"]


def test_soft_hyphens_unicode_hyphens_and_umlauts_join() -> None:
    assert clean.clean_page("infor\u00ad\nmation") == "information"
    assert clean.clean_page("infor\u2010\nmation") == "information"
    assert clean.dehyphenate("Ver-\nänderung") == "Veränderung"
    # A suspended hyphen before a conjunction is real: "Vor- und Nachteile".
    assert clean.dehyphenate("Vor-\nund Nachteile") == "Vor-\nund Nachteile"
    assert clean.dehyphenate("pre-\nand post-war") == "pre-\nand post-war"


# --- nothing lost: cleaning never empties a page ---------------------------------------------

ARABIC = "\u062d\u064e\u0628\u064a\u0628\u064a habibi \u062d\u064e\u0628\u064a\u0628\u064a"


@pytest.mark.parametrize(
    ("text", "n"), [(ARABIC, 4), ("Background", 6), ("Slide", 5), ("Quarterly Review", 3)]
)
def test_a_document_whose_pages_all_repeat_the_same_text_keeps_it(text: str, n: int) -> None:
    cleaned = clean.clean_pages([text] * n)
    assert [c.text for c in cleaned] == [text] * n
    assert all(c.removed == [] for c in cleaned)


def test_a_page_made_only_of_repeated_lines_keeps_them() -> None:
    pages = [f"Report 2024\nBody {w}.\nPage {i} of 5" for i, w in enumerate(WORDS, 1)]
    pages[2] = "Report 2024\nPage 3 of 5"  # nothing else on it
    cleaned = clean.strip_furniture(pages)
    assert cleaned[2].text == "Report 2024\nPage 3 of 5" and cleaned[2].removed == []
    assert cleaned[0].text == "Body alpha." and cleaned[0].removed == ["Report 2024", "Page 1 of 5"]


def test_numbered_slides_lose_the_number_only_when_they_have_content() -> None:
    only = clean.strip_furniture([f"Slide {i}" for i in range(1, 7)])
    assert [c.text for c in only] == [f"Slide {i}" for i in range(1, 7)]
    with_body = clean.strip_furniture([f"Point {w}\nSlide {i}" for i, w in enumerate(WORDS, 1)])
    assert [c.text for c in with_body] == [f"Point {w}" for w in WORDS]
    assert [c.removed for c in with_body] == [[f"Slide {i}"] for i in range(1, 6)]


# --- running headers and footers: what goes ---------------------------------------------------

TITLES = ["WEGE UND KNOTEN", "BÄUME", "WÄLDER", "FLÜSSE", "SCHNITTE", "FÄRBUNGEN"]


def test_book_headers_with_page_numbers_go_even_when_each_is_different() -> None:
    # Even pages "18 1.6. WEGE UND KNOTEN", odd pages "KAPITEL 1. <TITLE> 19": every header is
    # different, but each holds its page's number (page index + one offset).
    pages = []
    for i in range(12):
        number, title = 17 + i + 1, TITLES[i // 2]
        header = (
            f"{number} 1.{i // 2}. {title}" if number % 2 == 0 else f"KAPITEL {i}. {title} {number}"
        )
        pages.append(f"{header}\nDer Text handelt von {title.lower()} und {WORDS[i % 5]}.")
    cleaned = clean.strip_furniture(pages)
    assert all(c.text.startswith("Der Text handelt") for c in cleaned), cleaned
    assert cleaned[0].removed == ["18 1.0. WEGE UND KNOTEN"]


def test_chapter_headers_repeating_on_nearby_pages_go() -> None:
    # No page numbers; each chapter's header repeats on its own four pages only (< half).
    pages = [
        f"Part {1 + i // 4}.1 {TITLES[i // 4]}\nBody text on {WORDS[i % 5]}." for i in range(12)
    ]
    cleaned = clean.strip_furniture(pages)
    assert [c.text for c in cleaned] == [f"Body text on {WORDS[i % 5]}." for i in range(12)]


def test_page_numbers_roman_and_dashed() -> None:
    romans = ["i", "ii", "iii", "iv", "v"]
    pages = [f"Preface text {w}.\n- {r} -" for w, r in zip(WORDS, romans, strict=True)]
    assert _stripped(pages) == [f"Preface text {w}." for w in WORDS]


def test_numbers_inside_content_lines_are_not_page_numbers() -> None:
    # A table-of-contents line at the bottom holds "1.1" and "3"; page 1's number is 1.
    pages = [f"page {i} / 3\nBody {w}." for i, w in enumerate(WORDS[:3], 1)]
    pages[0] += "\nParagraph 1.1 .......... 3"
    cleaned = clean.strip_furniture(pages)
    assert cleaned[0].text == "Body alpha.\nParagraph 1.1 .......... 3"
    assert cleaned[0].removed == ["page 1 / 3"]


# --- the two failing shapes of the issue, as PDFs --------------------------------------------


def test_six_pages_of_background_keep_their_text() -> None:
    raw = extract.extract(make_pdf(["Background"] * 6))
    cleaned = clean.clean_pages(raw.pages)
    assert [c.text for c in cleaned] == ["Background"] * 6


@pytest.mark.skipif(FONT is None, reason="no Unicode TTF font (DejaVu) installed for Arabic")
def test_four_pages_of_arabic_and_latin_keep_their_text() -> None:
    pdf = FPDF()
    pdf.add_font("unicode", fname=str(FONT))
    pdf.set_font("unicode", size=12)
    for _ in range(4):
        pdf.add_page()
        pdf.cell(0, 10, ARABIC)
    cleaned = clean.clean_pages(extract.extract(bytes(pdf.output())).pages)
    # fpdf2 without a shaping engine draws Arabic glyphs in visual order: compare letters.
    assert all("habibi" in c.text and sorted(c.text) == sorted(cleaned[0].text) for c in cleaned)
    assert all(c.removed == [] for c in cleaned)


def _stripped(pages: list[str]) -> list[str]:
    return [page.text for page in clean.strip_furniture(pages)]
