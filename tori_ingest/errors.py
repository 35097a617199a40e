"""Stable error codes (SPEC §3, §10) and the two exception types that carry them.

`JobError` travels from a pool process back to the worker (it pickles by its args);
`ApiError` becomes the HTTP error envelope.
"""

from __future__ import annotations

# Job failure codes (SPEC §3): clients switch on these strings.
NOT_A_PDF = "not_a_pdf"
EMPTY_FILE = "empty_file"
TOO_LARGE = "too_large"
ENCRYPTED = "encrypted"
BAD_PASSWORD = "bad_password"
CORRUPT_PDF = "corrupt_pdf"
TOO_MANY_PAGES = "too_many_pages"
TIMEOUT = "timeout"
WORKER_CRASHED = "worker_crashed"
NO_TEXT = "no_text"
CANCELLED = "cancelled"
INTERNAL = "internal"

# HTTP-only codes (SPEC §10).
UNAUTHORIZED = "unauthorized"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
BAD_REQUEST = "bad_request"
IDEMPOTENCY_CONFLICT = "idempotency_conflict"
NOT_READY = "not_ready"
EXPIRED = "expired"
UNAVAILABLE = "unavailable"

JOB_CODES = frozenset(
    {
        NOT_A_PDF,
        EMPTY_FILE,
        TOO_LARGE,
        ENCRYPTED,
        BAD_PASSWORD,
        CORRUPT_PDF,
        TOO_MANY_PAGES,
        TIMEOUT,
        WORKER_CRASHED,
        NO_TEXT,
        CANCELLED,
        INTERNAL,
    }
)


class JobError(Exception):
    """A permanent failure of one job, with its SPEC §3 code. Never retried."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ApiError(Exception):
    """An HTTP error answered with the envelope `{"error": {code, message, request_id}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message
