"""What counts as a document, by its bytes (never by file name or content type).

A PDF, or an image to OCR: PNG, JPEG or TIFF (multi-page). Anything else is refused at the
door (415 `unsupported_type`), so the pool only ever sees bytes it has a reader for.
"""

from __future__ import annotations

from enum import StrEnum

from tori_ingest.core.errors import Refused
from tori_ingest.core.vocab import ErrorCode

PDF_MAGIC = b"%PDF-"
MAGIC_WINDOW = 1024  # PDF readers accept the header anywhere in the first KiB


class MediaType(StrEnum):
    """A document's type as the result reports it (`document.media_type`)."""

    PDF = "application/pdf"
    PNG = "image/png"
    JPEG = "image/jpeg"
    TIFF = "image/tiff"


# Images must start with their signature (readers do not search for it).
IMAGE_MAGIC: dict[bytes, MediaType] = {
    b"\x89PNG\r\n\x1a\n": MediaType.PNG,
    b"\xff\xd8\xff": MediaType.JPEG,
    b"II*\x00": MediaType.TIFF,  # little-endian TIFF
    b"MM\x00*": MediaType.TIFF,  # big-endian TIFF
}
SUPPORTED = "a PDF or a PNG, JPEG or TIFF image"


def sniff(head: bytes) -> MediaType | None:
    """The document type of a file starting with `head`; None if it is none we read."""
    for magic, media in IMAGE_MAGIC.items():
        if head.startswith(magic):
            return media
    return MediaType.PDF if PDF_MAGIC in head[:MAGIC_WINDOW] else None


def check_document(
    head: bytes, size: int, *, final: bool, name: str = "the uploaded file"
) -> MediaType | None:
    """Refuse an empty file or one that is neither a PDF nor a supported image; `final` once
    all bytes are in. Returns the type once it is known.

    Before the end only a full window without any signature is decisive.
    """
    if final and size == 0:
        raise Refused(ErrorCode.EMPTY_FILE, f"{name} is empty")
    media = sniff(head)
    if media is None and (final or len(head) >= MAGIC_WINDOW):
        raise Refused(ErrorCode.UNSUPPORTED_TYPE, f"{name} is not {SUPPORTED}")
    return media
