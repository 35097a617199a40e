"""Security-review findings pinned on pure functions: metric labels, URL masking, download names."""

from __future__ import annotations

import pytest

from tori_ingest.core.errors import Refused, StorageUnavailable
from tori_ingest.core.formats import MediaType
from tori_ingest.core.settings import mask_url
from tori_ingest.core.vocab import ErrorCode
from tori_ingest.http.download import download_name
from tori_ingest.http.middleware import escaped_code


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ConnectionRefusedError(), 503),  # the database's address refuses
        (TimeoutError(), 503),
        (StorageUnavailable(OSError(28, "No space left on device")), 503),
        (Refused(ErrorCode.NOT_FOUND, "x"), 404),
        (RuntimeError("bug"), 500),
    ],
)
def test_the_label_of_an_escaped_exception_is_the_status_it_becomes(
    exc: BaseException, status: int
) -> None:
    assert escaped_code(exc).http_status == status


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("http://u:p@ss@host:1/a?b=c", "http://***@host:1/a?b=***"),  # `@` in the password
        ("https://TOKEN@host/", "https://***@host/"),  # a bare token as the user
        ("http://host/path", "http://host/path"),
        ("http://[::1/x?token=LEAK", "***"),  # unparseable: nothing shown
    ],
)
def test_mask_url_hides_userinfo_queries_and_fragments(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    ("original", "media", "served"),
    [
        ("invoice.html", MediaType.PDF, "invoice.pdf"),
        ("Scan.PDF", MediaType.PDF, "Scan.PDF"),
        ("photo.jpeg", MediaType.JPEG, "photo.jpeg"),
        ("photo.pdf", MediaType.PNG, "photo.png"),  # the bytes decide, not the name
        ('a"b;c\\d.pdf', MediaType.PDF, "a_b_c_d.pdf"),
        ("invoice\u202egpj.exe", MediaType.PDF, "invoicegpj.pdf"),  # right-to-left override
        ("line\r\nbreak.pdf", MediaType.PDF, "linebreak.pdf"),
        (".htaccess", MediaType.PDF, "document.pdf"),
        ("résumé", MediaType.TIFF, "résumé.tif"),
    ],
)
def test_download_names_say_what_the_bytes_are(
    original: str, media: MediaType, served: str
) -> None:
    assert download_name(original, media) == served
