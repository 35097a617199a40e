"""The job vocabulary, written once: statuses, lanes and error codes.

Everything else (SQL CHECK constraints, the OpenAPI enums, metrics labels, CLI choices,
response models) refers to these enums; a test ties the SQL constraints to them.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A job's user-facing state: queued → running → succeeded | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})
ACTIVE = frozenset({Status.QUEUED, Status.RUNNING})


class Stage(StrEnum):
    """Where a job's CPU goes (`tori_stage_cpu_seconds_total`, `timings_ms.cpu`, the bench)."""

    EXTRACT = "extract"
    OCR = "ocr"
    CLEAN = "clean"
    LAYOUT = "layout"  # blocks and chunks: page analysis during extraction, then the document
    NLP = "nlp"
    ASSEMBLE = "assemble"  # the result built in the pool process and completed by the worker
    STORE = "store"  # the result serialised and written by the worker


class PartPhase(StrEnum):
    """The phases of a job split into page-range parts (TORI_SPLIT_PAGES)."""

    READ = "read"  # a page range: text layer, OCR, layout (parts, in parallel)
    PREPARE = "prepare"  # every page at once: cleaning, language, blocks, chunks (once)
    NLP = "nlp"  # a page range's entities, keyphrases, words (parts, in parallel)


class Lane(StrEnum):
    """Priority lane: interactive uploads always overtake a bulk back-fill."""

    INTERACTIVE = "interactive"
    BULK = "bulk"

    @property
    def priority(self) -> int:
        """Procrastinate fetches the highest priority first."""
        return 100 if self is Lane.INTERACTIVE else 0


class ErrorCode(StrEnum):
    """Stable error strings clients switch on, each with its HTTP status and retryability.

    `job` codes can end a job (`error.code` of a failed job); the others exist only as HTTP
    answers. Only the HTTP layer turns `http_status` into a response.
    """

    http_status: int
    retryable: bool
    job: bool

    def __new__(cls, value: str, http_status: int, retryable: bool, job: bool) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.http_status = http_status
        member.retryable = retryable
        member.job = job
        return member

    # Job failure codes (also answered at upload where they apply).
    NOT_A_PDF = ("not_a_pdf", 415, False, True)
    EMPTY_FILE = ("empty_file", 400, False, True)
    TOO_LARGE = ("too_large", 413, False, True)
    ENCRYPTED = ("encrypted", 422, False, True)
    BAD_PASSWORD = ("bad_password", 422, False, True)
    CORRUPT_PDF = ("corrupt_pdf", 422, False, True)
    TOO_MANY_PAGES = ("too_many_pages", 422, False, True)
    TIMEOUT = ("timeout", 422, False, True)
    WORKER_CRASHED = ("worker_crashed", 500, False, True)
    NO_TEXT = ("no_text", 422, False, True)
    CANCELLED = ("cancelled", 409, False, True)
    INTERNAL = ("internal", 500, False, True)
    # HTTP-only codes.
    UNAUTHORIZED = ("unauthorized", 401, False, False)
    NOT_FOUND = ("not_found", 404, False, False)
    METHOD_NOT_ALLOWED = ("method_not_allowed", 405, False, False)
    BAD_REQUEST = ("bad_request", 400, False, False)
    IDEMPOTENCY_CONFLICT = ("idempotency_conflict", 409, False, False)
    NOT_READY = ("not_ready", 409, True, False)
    EXPIRED = ("expired", 410, False, False)
    UNAVAILABLE = ("unavailable", 503, True, False)
    RATE_LIMITED = ("rate_limited", 429, True, False)
    UNSUPPORTED_TYPE = ("unsupported_type", 415, False, False)  # neither a PDF nor an image


class OcrMode(StrEnum):
    """When pages are OCR'd: `auto` pages without a usable text layer, `off` never, `force`
    every page (TORI_OCR, or a job's own `ocr` field)."""

    AUTO = "auto"
    OFF = "off"
    FORCE = "force"


class Extractor(StrEnum):
    """Which library reads a PDF's text layer (TORI_EXTRACTOR, default pdfium: as good on the
    quality benchmark, 20 times faster on real-world files); pypdf always opens, decrypts and
    counts the pages, and reads whatever PDFium cannot."""

    PYPDF = "pypdf"
    PDFIUM = "pdfium"


class BlockType(StrEnum):
    """What a block of the result's structure is (SPEC §16)."""

    TITLE = "title"
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    LIST_ITEM = "list_item"
    TABLE = "table"
    CAPTION = "caption"
    CODE = "code"
    FORMULA = "formula"


class PageSource(StrEnum):
    """Where a page's text came from: the PDF's text layer, or OCR of its rendering."""

    TEXT = "text"
    OCR = "ocr"


class DeliveryState(StrEnum):
    """A webhook delivery: pending (being tried, or waiting for its next try) → delivered |
    failed (refused address, or no 2xx within the retry window) | cancelled (job erased)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class EventType(StrEnum):
    """The `type` of a webhook: one per terminal status."""

    JOB_SUCCEEDED = "job.succeeded"
    JOB_FAILED = "job.failed"
    JOB_CANCELLED = "job.cancelled"

    @classmethod
    def of(cls, status: Status) -> EventType:
        return cls(f"job.{status}")
