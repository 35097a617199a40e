"""Where a long document is cut: every page in exactly one part, parts of even size."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.pdfs import prose_pdf
from tori_ingest.bench import scans
from tori_ingest.pipeline import extract
from tori_ingest.pipeline.split import (
    MIN_PARTS,
    NLP_PART_CHARS,
    TEXT_PAGES_FACTOR,
    nlp_ranges,
    read_ranges,
)


def covers(ranges: list[tuple[int, int]], pages: int) -> bool:
    flat = [p for first, last in ranges for p in range(first, last + 1)]
    return flat == list(range(1, pages + 1))


@pytest.mark.parametrize("pages", [17, 48, 100, 320, 5000])
def test_read_parts_cover_every_page_in_even_parts(pages: int) -> None:
    ranges = read_ranges(pages, 16)
    assert covers(ranges, pages)
    sizes = [last - first + 1 for first, last in ranges]
    assert max(sizes) - min(sizes) <= 1 and max(sizes) <= 16
    assert len(ranges) >= min(pages, MIN_PARTS)


@pytest.mark.parametrize("pages", [17, 48, 320, 5000])
def test_pages_with_a_text_layer_make_bigger_read_parts(pages: int) -> None:
    ranges = read_ranges(pages, 16, to_ocr=0)
    assert covers(ranges, pages)
    sizes = [last - first + 1 for first, last in ranges]
    assert max(sizes) - min(sizes) <= 1 and max(sizes) <= 16 * TEXT_PAGES_FACTOR
    assert len(ranges) == min(pages, max(MIN_PARTS, -(-pages // (16 * TEXT_PAGES_FACTOR))))
    assert read_ranges(pages, 16, to_ocr=1) == read_ranges(pages, 16)  # one scan: small parts


def test_the_survey_tells_pages_that_only_ocr_can_read() -> None:
    text = prose_pdf(20)
    scan = scans.image_pdf([Image.new("L", (200, 280), 255)] * 3)
    assert extract.survey(text, above=16) == extract.Survey(20, 0)
    assert extract.survey(scan) == extract.Survey(3, 3)
    assert extract.survey(scan, above=16) == extract.Survey(3, 0)  # not counted: not split
    assert extract.survey(b"not a pdf") == extract.Survey(0, 0)


def test_short_documents_and_zero_are_not_split() -> None:
    assert read_ranges(16, 16) == [] and read_ranges(500, 0) == []


def test_nlp_parts_follow_the_characters() -> None:
    chars = [2000] * 325 + [0] * 20  # a book with blank pages at the end
    ranges = nlp_ranges(chars)
    assert covers(ranges, len(chars))
    per_part = [sum(chars[first - 1 : last]) for first, last in ranges]
    assert -(-sum(chars) // NLP_PART_CHARS) == 13
    assert len(ranges) == 14  # made even: two processes end together
    assert max(per_part) - min(per_part) <= 2 * 2000 + 20 * 0
    assert nlp_ranges([10, 0, 5]) == [(1, 3)]  # little text: one part
    assert len(nlp_ranges([NLP_PART_CHARS] * 3)) == 3  # no more parts than pages
