"""pypdf extraction on PDFs the tests make: exact text, metadata, typed failures."""

import pytest

from tests.helpers import CORPUS
from tests.pdfs import make_pdf
from tori_ingest.core.errors import JobError
from tori_ingest.core.vocab import ErrorCode, Extractor
from tori_ingest.pipeline import extract


def test_exact_text_per_page_and_metadata() -> None:
    data = make_pdf(
        ["First page text.", ["Second page,", "two lines."]], title="My Title", author="Jane Roe"
    )
    out = extract.extract(data)
    assert out.pages == ["First page text.", "Second page,\ntwo lines."]
    assert out.metadata["title"] == "My Title"
    assert out.metadata["author"] == "Jane Roe"
    assert out.metadata["created"] is not None
    assert out.encrypted is False
    assert out.warnings == []


def test_page_without_text_is_kept_empty() -> None:
    out = extract.extract(make_pdf(["one", "", "three"]))
    assert out.pages == ["one", "", "three"]


def test_progress_reported_per_page() -> None:
    seen: list[tuple[int, int]] = []
    extract.extract(make_pdf(["a", "b", "c"]), on_page=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_encrypted_needs_password() -> None:
    data = make_pdf(["Secret text."], user_password="s3cret")
    with pytest.raises(JobError) as info:
        extract.extract(data)
    assert info.value.code == ErrorCode.ENCRYPTED
    with pytest.raises(JobError) as info:
        extract.extract(data, password="wrong")
    assert info.value.code == ErrorCode.BAD_PASSWORD
    out = extract.extract(data, password="s3cret")
    assert out.pages == ["Secret text."]
    assert out.encrypted is True


def test_owner_password_only_opens_with_empty_password() -> None:
    out = extract.extract(make_pdf(["Open text."], user_password=""))
    assert out.pages == ["Open text."]
    assert out.encrypted is True


@pytest.mark.parametrize(
    "data", [b"%PDF-1.7\n garbage that is no pdf", b"%PDF-1.4\n" + b"\x00" * 2000, b"not a pdf"]
)
def test_garbage_is_corrupt_pdf(data: bytes) -> None:
    with pytest.raises(JobError) as info:
        extract.extract(data)
    assert info.value.code == ErrorCode.CORRUPT_PDF


def test_too_many_pages() -> None:
    with pytest.raises(JobError) as info:
        extract.extract(make_pdf(["a", "b", "c"]), max_pages=2)
    assert info.value.code == ErrorCode.TOO_MANY_PAGES
    assert "3 pages" in info.value.message


# --- TORI_EXTRACTOR=pdfium: the same pages, errors and metadata; pypdf where PDFium fails ----

PDFIUM = {"extractor": Extractor.PDFIUM}


def _words(pages: list[str]) -> list[list[str]]:
    return [page.split() for page in pages]


def test_pdfium_reads_the_same_text_and_metadata() -> None:
    data = make_pdf(["First page text.", "", ["Second page,", "two lines."]], title="T")
    fast, slow = extract.extract(data, **PDFIUM), extract.extract(data)
    assert _words(fast.pages) == _words(slow.pages)
    assert fast.metadata == slow.metadata and fast.warnings == []


def test_pdfium_keeps_pypdf_errors_and_opens_with_the_password() -> None:
    data = make_pdf(["Secret text."], user_password="s3cret")
    with pytest.raises(JobError) as info:
        extract.extract(data, **PDFIUM)
    assert info.value.code == ErrorCode.ENCRYPTED
    with pytest.raises(JobError) as info:
        extract.extract(data, password="wrong", **PDFIUM)
    assert info.value.code == ErrorCode.BAD_PASSWORD
    out = extract.extract(data, password="s3cret", **PDFIUM)
    assert out.encrypted and _words(out.pages) == [["Secret", "text."]]
    owner_only = extract.extract(make_pdf(["Open text."], user_password=""), **PDFIUM)
    assert _words(owner_only.pages) == [["Open", "text."]]


def test_a_file_pdfium_refuses_is_read_by_pypdf(monkeypatch: pytest.MonkeyPatch) -> None:
    import pypdfium2

    def refuse(*args: object, **kw: object) -> None:
        raise pypdfium2.PdfiumError("Data format error")

    monkeypatch.setattr(extract.pdfium, "PdfDocument", refuse)
    out = extract.extract(make_pdf(["Still read."]), **PDFIUM)
    assert out.pages == ["Still read."] and out.warnings == []


@pytest.mark.parametrize("extractor", list(Extractor))
def test_every_extractor_reads_the_real_world_corpus(extractor: Extractor) -> None:
    """Every file pypdf opens gives pages (or a typed error) with either extractor."""
    from tori_ingest.bench.pipelines import usable

    if not CORPUS.is_dir():
        pytest.skip(f"real-world corpus not found at {CORPUS}")
    for path in usable(sorted(CORPUS.glob("*.pdf"))):
        try:
            out = extract.extract(path.read_bytes(), extractor=extractor)
        except JobError:
            continue
        assert all(isinstance(page, str) for page in out.pages) and out.pages


def test_pdfium_line_end_hyphens_are_joined_like_pypdf_ones() -> None:
    from tori_ingest.pipeline import clean

    data = make_pdf([["This is infor-", "mation about Jean-", "Paul."]])
    fast = clean.clean_page(extract.extract(data, **PDFIUM).pages[0])
    assert fast == clean.clean_page(extract.extract(data).pages[0])
    assert "information" in fast and "Jean-\nPaul" in fast
