"""Bounded work on the pure functions: text caps, form draws, pages pypdf cannot measure."""

from __future__ import annotations

from typing import Any

import pytest

from tests.pdfs import form_bomb, make_pdf, text_bomb, vector_page
from tori_ingest.core.errors import JobError
from tori_ingest.core.vocab import ErrorCode, Extractor
from tori_ingest.pipeline import extract, scan, textbound

# --- 4. text decompression bombs -----------------------------------------------------------------

CAP = 50_000  # a lowered page cap: the bombs below stay small and fast


@pytest.mark.parametrize("extractor", list(Extractor))
def test_a_page_over_the_text_cap_fails_too_large_before_it_is_read(
    extractor: Extractor,
) -> None:
    under = extract.extract(text_bomb(CAP - 1000), extractor=extractor, max_page_text=CAP)
    assert len(under.pages[0]) == CAP - 1000
    with pytest.raises(JobError) as failed:
        extract.extract(text_bomb(CAP + 1000), extractor=extractor, max_page_text=CAP)
    assert failed.value.code is ErrorCode.TOO_LARGE
    assert "page 1" in failed.value.message


@pytest.mark.parametrize("extractor", list(Extractor))
def test_a_form_drawn_many_times_counts_every_draw(extractor: Extractor) -> None:
    """The page's own content is a few bytes per `Do`; the form's text counts per draw."""
    ok = extract.extract(form_bomb(1000, 40), extractor=extractor, max_page_text=CAP)
    assert len(ok.pages[0]) >= 40 * 1000
    with pytest.raises(JobError) as failed:
        extract.extract(form_bomb(1000, 60), extractor=extractor, max_page_text=CAP)
    assert failed.value.code is ErrorCode.TOO_LARGE


def test_the_document_text_cap_counts_every_page() -> None:
    pages = text_bomb(20_000, pages=3)
    assert len(extract.extract(pages, max_page_text=CAP, max_text=60_000).pages) == 3
    with pytest.raises(JobError) as failed:
        extract.extract(pages, max_page_text=CAP, max_text=50_000)
    assert failed.value.code is ErrorCode.TOO_LARGE
    assert "page 3" in failed.value.message


def test_a_large_drawing_with_little_text_is_not_refused() -> None:
    """A page of 3 MB of path operators (over the real 1M cap in bytes) shows one caption:
    only string operands count, so maps and CAD drawings still go through."""
    data = vector_page(3_000_000)
    for extractor in Extractor:
        assert extract.extract(data, extractor=extractor).pages[0] == "Only a caption."


def test_string_bytes_counts_strings_not_operators() -> None:
    content = b"BT (abc) Tj [(de) -120 (f\\)g)] TJ <414243> Tj ET 1 2 m 3 4 l S << /MCID 0 >> BDC"
    assert textbound.string_bytes(content, 1000) == len("abc)") + len("de)") + len("f\\)g)") + 3 + 1
    # inline image data is skipped as binary, whatever bytes it holds
    image = b"BI /W 4 /H 4 /BPC 8 /CS /G ID " + b"((((" * 1000 + b" EI Q"
    assert textbound.string_bytes(image, 10) == 1
    # an unclosed string runs to the end of the stream
    assert textbound.string_bytes(b"BT (" + b"A" * 500 + b" Tj ET", 10_000) == 506


def test_a_page_pypdf_cannot_measure_is_never_loaded_by_pdfium() -> None:
    """Its size unknown, the page is read by pypdf (bounded) and not rendered for OCR."""
    data = make_pdf(["The first page reads fine.", "The second page does not."])
    second = data.index(b"/FlateDecode", data.index(b"/FlateDecode") + 1)
    data = data[:second] + b"/NoSuchFilter" + data[second + len(b"/FlateDecode") :]

    def no_engine() -> Any:
        raise AssertionError("page 2 was rendered for OCR")

    raw = extract.extract(data, extractor=Extractor.PDFIUM)
    assert raw.unmeasured == [1] and raw.pages[0] == "The first page reads fine."
    read = scan.read(data, scan.Options(), no_engine, lambda _d, _t: None)
    assert any("page 2: its content cannot be decoded" in w for w in read.warnings)
