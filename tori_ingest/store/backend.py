"""The shared store: content-addressed documents in a directory or an S3-compatible bucket.

A key is `ab/abcdef….pdf` (the sha256), so the same bytes uploaded twice are stored once.
Bytes arrive in a temp entry (`tmp/<uuid>.part`, hashed while streaming) and are committed
to their key once the hash is known, so a reader never sees a half-written document. The
two backends (`dirstore`, `bucket`) keep the same contract; `open_storage` picks one from
`TORI_STORAGE_URL`, and nothing else in the service knows which it has.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from tori_ingest.core.formats import MAGIC_WINDOW

if TYPE_CHECKING:
    from tori_ingest.core.settings import Settings

TEMP_PREFIX = "tmp/"
TEMP_MAX_AGE_S = 24 * 3600  # a temp entry this old belongs to an upload that died


def key_for(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256}.pdf"


def new_temp() -> str:
    return f"{TEMP_PREFIX}{uuid.uuid4().hex}.part"


class TempWriter(ABC):
    """Streams one document into a temp entry, hashing, counting and keeping its head."""

    def __init__(self, temp: str) -> None:
        self.temp = temp
        self.size = 0
        self.head = b""
        self._hash = hashlib.sha256()

    async def write(self, chunk: bytes) -> None:
        if len(self.head) < MAGIC_WINDOW:
            self.head += chunk[: MAGIC_WINDOW - len(self.head)]
        self._hash.update(chunk)
        self.size += len(chunk)
        await self._write(chunk)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @abstractmethod
    async def _write(self, chunk: bytes) -> None: ...

    @abstractmethod
    async def close(self) -> None:
        """Every byte is in the temp entry (StorageUnavailable otherwise)."""

    @abstractmethod
    async def discard(self) -> None:
        """Nothing of this upload stays behind (best effort; never raises)."""


class Storage(ABC):
    """What the service does with stored documents; see the module docstring."""

    kind: str  # "directory" or "bucket", for /readyz and the logs
    location: str  # where, without secrets

    @abstractmethod
    def writer(self) -> TempWriter: ...

    @abstractmethod
    async def commit(self, temp: str, sha256: str) -> tuple[str, bool]:
        """Move a finished temp entry to its content address; (key, whether it is new).

        When the same bytes are already stored the temp entry stays: the caller keeps it
        until its jobs are committed (`files.ensure_stored`), then discards it.
        """

    @abstractmethod
    async def restore(self, key: str, temp: str) -> None:
        """Put `temp` in place as `key` if the stored document is missing (and temp is there)."""

    @abstractmethod
    async def discard(self, temp: str) -> None:
        """Delete a temp entry; missing is fine, failure is logged by the sweep, not raised."""

    @abstractmethod
    async def remove(self, key: str) -> None:
        """Delete a stored document (missing is fine); import-tree files are never ours."""

    @abstractmethod
    def local_file(self, key: str) -> contextlib.AbstractAsyncContextManager[Path]:
        """A local path holding the document while the context lasts (the pool reads paths)."""

    @abstractmethod
    def read(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, streamed (FileNotFoundError if gone)."""

    @abstractmethod
    async def size(self, key: str) -> int:
        """The stored document's size (FileNotFoundError if gone)."""

    async def presigned_url(self, key: str, ttl: timedelta) -> str | None:
        """A short-lived URL a client can GET the bytes from; None: serve them ourselves."""
        return None

    @abstractmethod
    async def problem(self) -> str | None:
        """Readiness: why this process cannot use the store right now (None: it can)."""

    @abstractmethod
    async def sweep_temp(self, max_age_s: float = TEMP_MAX_AGE_S) -> int:
        """Delete temp entries of uploads that died mid-stream; returns how many."""


def open_storage(settings: Settings) -> Storage:
    """The store `TORI_STORAGE_URL` names (a `file://` directory by default)."""
    url = settings.tori_storage_url
    if url.startswith("s3://"):
        from tori_ingest.store.bucket import BucketStorage  # obstore loads only when used

        return BucketStorage(url, settings)
    from tori_ingest.store.dirstore import DirStorage

    storage = DirStorage(Path(url.removeprefix("file://")))
    storage.prepare()
    return storage
