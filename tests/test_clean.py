"""Cleaning rules of SPEC §5, one by one, on exact strings."""

from tori_ingest.pipeline import clean


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
    assert clean.strip_running_lines(pages) == [f"Body about {w}." for w in WORDS]


def test_running_lines_need_enough_pages_and_stay_in_the_body() -> None:
    two = ["Header\nBody one", "Header\nBody two"]
    assert clean.strip_running_lines(two) == two  # too few pages to tell
    # A repeated line in the middle of a page is content, not a header.
    pages = [f"Top {w}\nSecond {w}\nRepeated line\nFourth {w}\nBottom {w}" for w in WORDS]
    assert clean.strip_running_lines(pages) == pages


def test_long_repeated_lines_are_content() -> None:
    long_line = "A long repeated sentence that is clearly part of the body text of each page."
    long_line += " It keeps going."
    pages = [f"{long_line}\nunique {w}" for w in WORDS]
    assert clean.strip_running_lines(pages) == pages


def test_empty_pages_stay_empty_and_in_place() -> None:
    pages = ["Head\nA", "", "Head\nB", "Head\nC"]
    assert clean.strip_running_lines(pages) == ["A", "", "B", "C"]
