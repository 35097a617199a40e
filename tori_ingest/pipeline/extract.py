"""Text and metadata out of PDF bytes: a pure function (bytes in, data out).

pypdf opens, decrypts and counts the pages and reads the metadata in every case, so errors,
metadata and limits are the same whichever extractor reads the text. `Extractor.PDFIUM` reads
the text with PDFium (C++, several times faster on real-world files); a file PDFium cannot
open, or a page it cannot read, is read by pypdf instead.

Failures of the document as a whole become typed `JobError`s; a single unreadable page
becomes a warning and an empty page, so one broken page never loses the rest.

Text is bounded (`too_large`), because a few MB of PDF can hold a text decompression bomb: a
1.6 MB file whose content streams inflate to 400 MB of `(AAAA…) Tj`. PDFium spends about 250
bytes per character of the page it reads (measured: a page of 1M characters peaks 290 MB
higher, one of 10M at 2.5 GB) and, refused an allocation by the pool's address-space cap
(TORI_MAX_MEMORY_MB), aborts the whole process (SIGABRT: `worker_crashed`, no MemoryError to
catch). So each page is measured before any extractor reads it, from its content streams
(see `text_bound`), and the text actually extracted is checked again page by page.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pypdfium2 as pdfium
from pypdf import PageObject, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PyPdfError

from tori_ingest.core.errors import JobError
from tori_ingest.core.vocab import ErrorCode, Extractor
from tori_ingest.pipeline import layout, page_lines
from tori_ingest.pipeline.textbound import text_bound

# pypdf reports every oddity of a malformed file through logging; those are not ours to print.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# Characters of text one page may hold: 1M is about 100 dense A4 pages' worth (a dense page has
# 5-10K) and keeps PDFium's peak for the page near 300 MB, well inside the default 2 GB cap
# with the spaCy and OCR models loaded.
MAX_PAGE_TEXT = 1_000_000
# Characters of the whole document: the page cap (TORI_MAX_PAGES, 5,000) times a dense page.
# The pool holds the text a few times over (raw, cleaned, the result, its JSON): a few hundred
# MB at most, while a bomb spread over many pages fails as soon as the sum passes this.
MAX_TEXT = 50_000_000


# What pypdf raises on a malformed file (it is not strict about its own exception types).
_UNREADABLE = (
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
)


@dataclass
class Extracted:
    pages: list[str]
    metadata: dict[str, Any]
    encrypted: bool
    warnings: list[str] = field(default_factory=list)
    # Pages (0-based) whose content pypdf could not decode, so their size is unknown: PDFium
    # (which has no bound of its own) never loads them, to read or to render for OCR.
    unmeasured: list[int] = field(default_factory=list)
    # Each page's lines and tables for the layout (PDFium's pages), or its text (pypdf's).
    structures: list[layout.PageStructure] = field(default_factory=list)
    outline: list[tuple[int, str, int]] = field(default_factory=list)
    layout_ms: tuple[float, float] = (0.0, 0.0)  # (wall, CPU) of analysing pages' layout
    first: int = 1  # the number of `pages[0]` in the document
    total: int = 0  # the document's page count


def extract(
    data: bytes,
    *,
    password: str | None = None,
    max_pages: int = 5000,
    on_page: Callable[[int, int], None] | None = None,
    on_text: Callable[[str], None] | None = None,
    extractor: Extractor = Extractor.PYPDF,
    max_page_text: int = MAX_PAGE_TEXT,
    max_text: int = MAX_TEXT,
    pages: tuple[int, int] | None = None,
) -> Extracted:
    """Extract every page's raw text, or that of `pages` (first, last; 1-based, inclusive: one
    part of a split document, whose outline comes with its first part); `on_page(done,
    total)` reports progress, after `on_text(text)` has seen the page's text.

    A page that may show more than `max_page_text` characters, or a document whose text
    passes `max_text`, fails `too_large` as soon as that is known (see the module docstring).
    """
    opened = None
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = bool(reader.is_encrypted)
        if encrypted:
            opened = _decrypt(reader, password)
        total = len(reader.pages)
    except JobError:
        raise
    except DependencyError as exc:  # e.g. AES without `cryptography`: our install is broken
        raise JobError(ErrorCode.INTERNAL, f"missing PDF dependency: {exc}") from None
    except FileNotDecryptedError:
        raise JobError(ErrorCode.ENCRYPTED, "the PDF is encrypted and needs a password") from None
    except _UNREADABLE as exc:
        raise JobError(ErrorCode.CORRUPT_PDF, f"the PDF cannot be read: {_short(exc)}") from None
    if total == 0:
        raise JobError(ErrorCode.CORRUPT_PDF, "the PDF has no pages")
    if total > max_pages:
        raise JobError(
            ErrorCode.TOO_MANY_PAGES, f"the PDF has {total} pages; the limit is {max_pages}"
        )

    first, last = pages or (1, total)
    if not 1 <= first <= last <= total:
        raise JobError(ErrorCode.INTERNAL, f"pages {first}-{last} are not in the document")
    texts: list[str] = []
    structures: list[layout.PageStructure] = []
    warnings: list[str] = []
    chars, unmeasured = 0, []
    fast = _Pdfium(data, opened, total) if extractor is Extractor.PDFIUM else None
    for number in range(first, last + 1):
        measured = _check_page(reader.pages[number - 1], number, max_page_text)
        if not measured:
            unmeasured.append(number - 1)
        text, structure = fast.text(number - 1) if fast is not None and measured else (None, None)
        if text is None:
            try:
                text = reader.pages[number - 1].extract_text() or ""
            except MemoryError:
                raise
            except Exception as exc:  # a broken page must not fail the document
                text = ""
                warnings.append(f"page {number}: text could not be extracted ({_short(exc)})")
        chars += len(text)
        if len(text) > max_page_text:
            raise _too_large(
                f"page {number} has {len(text):,} characters; the limit is {max_page_text:,}"
            )
        if chars > max_text:
            raise _too_large(
                f"the text passes the limit of {max_text:,} characters at page {number}"
            )
        texts.append(text)
        structures.append(structure or layout.plain_page(number, text, *_size(reader, number)))
        if on_text is not None:
            on_text(text)
        if on_page is not None:
            on_page(number - first + 1, last - first + 1)
    outline: list[tuple[int, str, int]] = []
    if fast is not None:
        outline = fast.outline() if first == 1 else []
        fast.close()
    return Extracted(
        pages=texts,
        metadata=_metadata(reader),
        encrypted=encrypted,
        warnings=warnings,
        unmeasured=unmeasured,
        structures=structures,
        outline=outline,
        layout_ms=fast.spent if fast is not None else (0.0, 0.0),
        first=first,
        total=total,
    )


@dataclass(frozen=True)
class Survey:
    """What a PDF's page tree tells at once: its pages, and how many of them have no font (no
    text layer: only OCR can read them)."""

    pages: int
    fontless: int


def survey(data: bytes, password: str | None = None, above: int = 0) -> Survey:
    """Pages and fontless pages of a PDF, these counted only past `above` pages (fonts are
    looked up in each page's own resources: text drawn from a form XObject counts as fontless,
    which only makes its parts smaller). Survey(0, 0) when it is not a PDF or cannot be
    opened: the caller only plans with it."""
    if b"%PDF" not in data[:1024]:
        return Survey(0, 0)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            _decrypt(reader, password)
        pages = reader.pages
        if len(pages) <= above:
            return Survey(len(pages), 0)
        return Survey(len(pages), sum(1 for page in pages if not _has_font(page)))
    except (JobError, DependencyError, *_UNREADABLE):
        return Survey(0, 0)


def _has_font(page: PageObject) -> bool:
    resources = page.get("/Resources")
    fonts = resources.get_object().get("/Font") if resources is not None else None
    return bool(fonts is not None and fonts.get_object())


def _too_large(message: str) -> JobError:
    return JobError(ErrorCode.TOO_LARGE, message)


def _check_page(page: PageObject, number: int, limit: int) -> bool:
    """Refuse (`too_large`) a page that may show more than `limit` characters, before any
    extractor reads it. False when pypdf cannot decode its content to tell."""
    try:
        bound = text_bound(page, limit)
    except LimitReachedError:  # a stream past pypdf's own decoding limits (75 MB)
        raise _too_large(
            f"page {number} has a content stream that decodes past pypdf's limit"
        ) from None
    except MemoryError:
        raise
    except Exception:  # a broken stream: pypdf reads the page or warns, never PDFium
        return False
    if bound > limit:
        raise _too_large(f"page {number} may show more than {limit:,} characters (the page limit)")
    return True


# PDFium drops the line break after a hyphen that ends a line and marks the hyphen U+FFFE
# (U+0002 in older builds): put "-\n" back, so cleaning joins "infor-\nmation" as for pypdf.
_PDFIUM_BREAKS = str.maketrans({"\ufffe": "-\n", "\x02": "-\n"})


class _Pdfium:
    """PDFium's text of each page, or None where pypdf should read it instead: the document
    (PDFium refuses a few that pypdf repairs) or the page cannot be read, or the page counts
    of the two disagree (then page numbers could not be trusted)."""

    def __init__(self, data: bytes, password: str | None, pages: int) -> None:
        self.doc: pdfium.PdfDocument | None = None
        self.spent = (0.0, 0.0)  # (wall, CPU) ms of layout analysis, within extraction's
        try:
            self.doc = pdfium.PdfDocument(data, password=password or None)
        except pdfium.PdfiumError:
            return
        if len(self.doc) != pages:
            self.close()
            self.doc = None

    def text(self, index: int) -> tuple[str | None, layout.PageStructure | None]:
        """The page's text and its layout (lines, tables), read in one pass."""
        if self.doc is None:
            return None, None
        try:
            page = self.doc[index]
            try:
                textpage = page.get_textpage()
                try:
                    text = str(textpage.get_text_range())
                    wall, cpu = time.perf_counter(), time.process_time()
                    structure = layout.analyse_page(
                        index + 1, page_lines.read_page(page, textpage, text)
                    )
                    self.spent = (
                        self.spent[0] + (time.perf_counter() - wall) * 1000,
                        self.spent[1] + (time.process_time() - cpu) * 1000,
                    )
                    return text.translate(_PDFIUM_BREAKS), structure
                finally:
                    textpage.close()
            finally:
                page.close()
        except (pdfium.PdfiumError, IndexError, ValueError):
            return None, None

    def outline(self) -> list[tuple[int, str, int]]:
        return page_lines.read_outline(self.doc) if self.doc is not None else []

    def close(self) -> None:
        if self.doc is not None:
            self.doc.close()


def _size(reader: PdfReader, number: int) -> tuple[float, float]:
    try:
        box = reader.pages[number - 1].mediabox
        return float(box.width), float(box.height)
    except Exception:  # a broken page box: the page's blocks get no size
        return 0.0, 0.0


def _decrypt(reader: PdfReader, password: str | None) -> str:
    """The password that opens the PDF ("" for owner-only protection)."""
    # Try the submitted password first, then the empty user password (owner-only protection).
    candidates = [p for p in (password, "") if p is not None]
    for candidate in dict.fromkeys(candidates):
        if reader.decrypt(candidate):
            return candidate
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
