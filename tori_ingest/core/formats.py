"""What counts as a document, by its bytes (never by file name or content type)."""

from __future__ import annotations

from tori_ingest.core.errors import Refused
from tori_ingest.core.vocab import ErrorCode

PDF_MAGIC = b"%PDF-"
MAGIC_WINDOW = 1024  # PDF readers accept the header anywhere in the first KiB


def check_pdf(head: bytes, size: int, *, final: bool, name: str = "the uploaded file") -> None:
    """Refuse an empty file or one without a PDF header; `final` once all bytes are in.

    Before the end only a full window without the header is decisive.
    """
    if final and size == 0:
        raise Refused(ErrorCode.EMPTY_FILE, f"{name} is empty")
    if (final or len(head) >= MAGIC_WINDOW) and PDF_MAGIC not in head[:MAGIC_WINDOW]:
        raise Refused(ErrorCode.NOT_A_PDF, f"{name} is not a PDF (no %PDF- header)")
