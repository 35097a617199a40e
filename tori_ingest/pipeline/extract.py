"""Text and metadata out of PDF bytes with pypdf: a pure function (bytes in, data out).

Failures of the document as a whole become typed `JobError`s; a single unreadable page
becomes a warning and an empty page, so one broken page never loses the rest.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

from tori_ingest.core.errors import JobError
from tori_ingest.core.vocab import ErrorCode

# pypdf reports every oddity of a malformed file through logging; those are not ours to print.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass
class Extracted:
    pages: list[str]
    metadata: dict[str, Any]
    encrypted: bool
    warnings: list[str] = field(default_factory=list)


def extract(
    data: bytes,
    *,
    password: str | None = None,
    max_pages: int = 5000,
    on_page: Callable[[int, int], None] | None = None,
    on_text: Callable[[str], None] | None = None,
) -> Extracted:
    """Extract every page's raw text; `on_page(done, total)` reports progress, after
    `on_text(text)` has seen the page's text."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = bool(reader.is_encrypted)
        if encrypted:
            _decrypt(reader, password)
        total = len(reader.pages)
    except JobError:
        raise
    except DependencyError as exc:  # e.g. AES without `cryptography`: our install is broken
        raise JobError(ErrorCode.INTERNAL, f"missing PDF dependency: {exc}") from None
    except FileNotDecryptedError:
        raise JobError(ErrorCode.ENCRYPTED, "the PDF is encrypted and needs a password") from None
    except (
        PyPdfError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        AssertionError,
        RecursionError,
        UnicodeError,
        ZeroDivisionError,
        OverflowError,
    ) as exc:
        raise JobError(ErrorCode.CORRUPT_PDF, f"the PDF cannot be read: {_short(exc)}") from None
    if total == 0:
        raise JobError(ErrorCode.CORRUPT_PDF, "the PDF has no pages")
    if total > max_pages:
        raise JobError(
            ErrorCode.TOO_MANY_PAGES, f"the PDF has {total} pages; the limit is {max_pages}"
        )

    pages: list[str] = []
    warnings: list[str] = []
    for number in range(1, total + 1):
        try:
            text = reader.pages[number - 1].extract_text() or ""
        except MemoryError:
            raise
        except Exception as exc:  # a broken page must not fail the document
            text = ""
            warnings.append(f"page {number}: text could not be extracted ({_short(exc)})")
        pages.append(text)
        if on_text is not None:
            on_text(text)
        if on_page is not None:
            on_page(number, total)
    return Extracted(
        pages=pages, metadata=_metadata(reader), encrypted=encrypted, warnings=warnings
    )


def _decrypt(reader: PdfReader, password: str | None) -> None:
    # Try the submitted password first, then the empty user password (owner-only protection).
    candidates = [p for p in (password, "") if p is not None]
    for candidate in dict.fromkeys(candidates):
        if reader.decrypt(candidate):
            return
    if password:
        raise JobError(ErrorCode.BAD_PASSWORD, "the submitted password does not open the PDF")
    raise JobError(ErrorCode.ENCRYPTED, "the PDF is encrypted and needs a password")


def _metadata(reader: PdfReader) -> dict[str, Any]:
    out: dict[str, Any] = {"title": None, "author": None, "producer": None, "created": None}
    try:
        info = reader.metadata
        if info is None:
            return out
        out["title"] = _text(info.title)
        out["author"] = _text(info.author)
        out["producer"] = _text(info.producer)
        created = info.creation_date
        out["created"] = created.isoformat() if isinstance(created, datetime) else None
    except Exception:  # malformed metadata is common and never worth failing a job
        pass
    return out


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).replace("\x00", "").strip()
    return text or None


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."
