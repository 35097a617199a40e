"""pypdf extraction on PDFs the tests make: exact text, metadata, typed failures."""

import pytest

from tori_ingest.core.errors import JobError
from tori_ingest.core.vocab import ErrorCode
from tori_ingest.pipeline import extract

from .pdfs import make_pdf


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
