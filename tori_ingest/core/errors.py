"""Domain errors: what went wrong, as an `ErrorCode` and a message for people.

Domain code raises these with an `ErrorCode`; each code carries its HTTP status
(`ErrorCode.http_status`, one table in `core.vocab`), which the HTTP layer answers with, and
the worker records a `JobError` as a failed job.
"""

from __future__ import annotations

from tori_ingest.core.vocab import ErrorCode


class ToriError(Exception):
    """Base of every error that carries a stable code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(code, message)
        # A lookup by value (a code read back from the database); mypy reads the call as
        # the members' own __new__.
        self.code = ErrorCode(code)  # type: ignore[call-arg]
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class JobError(ToriError):
    """A permanent failure of one job. Never retried; pickles across the pool boundary.

    `cpu_ms`: the pool's CPU per stage until it was raised: a third of the pool's CPU on the
    real-world corpus went to documents that end `no_text` after OCR found nothing, and the
    stage totals (`tori_stage_cpu_seconds_total`) should show it.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(code, message)
        self.cpu_ms: dict[str, float] = {}


class Refused(ToriError):
    """A request the service will not carry out as asked (bad input, unknown job, conflict)."""


class Unavailable(ToriError):
    """A dependency (`database`, `storage`) cannot be reached right now: transient, retry."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(
            ErrorCode.UNAVAILABLE, f"the {dependency} is unavailable ({detail}); retry"
        )
        self.dependency = dependency


class StorageUnavailable(Unavailable):
    """The store failed an operation (full disk, permissions, bucket down)."""

    def __init__(self, exc: BaseException) -> None:
        detail = exc.strerror if isinstance(exc, OSError) else None  # never a host or a key
        super().__init__("storage", detail or type(exc).__name__)


class StartupError(RuntimeError):
    """This process cannot start as configured; the message names the fix (one line)."""


class ModelError(StartupError):
    """The configured spaCy pipeline cannot be loaded; the message names the fix."""
