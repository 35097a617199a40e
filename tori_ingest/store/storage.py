"""The shared volume: content-addressed PDFs, written through a temp file and an atomic rename.

A key is `ab/abcdef….pdf` (the sha256), so the same PDF uploaded twice is stored once, and a
reader never sees a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import aiofiles
import aiofiles.os

from tori_ingest.core.errors import StorageUnavailable
from tori_ingest.core.formats import MAGIC_WINDOW

IMPORT_PREFIX = "import:"


class Storage:
    def __init__(self, root: Path, import_root: Path | None = None) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.import_root = import_root

    def prepare(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key_for(sha256: str) -> str:
        return f"{sha256[:2]}/{sha256}.pdf"

    def path(self, key: str) -> Path:
        if key.startswith(IMPORT_PREFIX):  # by-reference jobs of older versions (not copied)
            if self.import_root is None:
                raise FileNotFoundError(f"{key}: TORI_IMPORT_DIR is not set in this process")
            return self.import_root / key[len(IMPORT_PREFIX) :]
        return self.root / key

    def writer(self) -> TempWriter:
        return TempWriter(self.tmp / f"{uuid.uuid4().hex}.part")

    async def commit(self, temp: Path, sha256: str) -> tuple[str, bool]:
        """Move a finished temp file to its content address; (key, whether it is new).

        When the same bytes are already stored the temp file stays: the caller keeps it until
        its jobs are committed (`files.ensure_stored`), then discards it.
        """
        key = self.key_for(sha256)
        final = self.path(key)
        try:
            if await aiofiles.os.path.exists(final):
                return key, False
            await aiofiles.os.makedirs(final.parent, exist_ok=True)
            await aiofiles.os.replace(temp, final)
        except OSError as exc:
            raise StorageUnavailable(exc) from exc
        return key, True

    async def restore(self, key: str, temp: Path) -> None:
        """Put `temp` in place as `key` if the stored file is missing (and the temp is there)."""
        final = self.path(key)
        try:
            if not await aiofiles.os.path.exists(final) and await aiofiles.os.path.exists(temp):
                await aiofiles.os.makedirs(final.parent, exist_ok=True)
                await aiofiles.os.replace(temp, final)
        except OSError as exc:
            raise StorageUnavailable(exc) from exc

    async def remove(self, key: str) -> None:
        """Delete a stored file; files of the import tree are never ours to delete."""
        if key.startswith(IMPORT_PREFIX):
            return
        try:
            await aiofiles.os.remove(self.path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageUnavailable(exc) from exc

    def writable(self) -> bool:
        """Readiness probe: can this process create a file on the volume right now?"""
        probe = self.tmp / f".probe-{os.getpid()}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
            return True
        except OSError:
            return False


class TempWriter:
    """Streams chunks to a temp file, hashing and counting as it goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self.head = b""
        self._hash = hashlib.sha256()
        self._file: aiofiles.threadpool.binary.AsyncBufferedIOBase | None = None

    async def write(self, chunk: bytes) -> None:
        if len(self.head) < MAGIC_WINDOW:
            self.head += chunk[: MAGIC_WINDOW - len(self.head)]
        self._hash.update(chunk)
        self.size += len(chunk)
        try:
            if self._file is None:
                self._file = await aiofiles.open(self.path, "wb")
            await self._file.write(chunk)
        except OSError as exc:  # a full disk is the store's problem, not the client's
            raise StorageUnavailable(exc) from exc

    async def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                await file.close()
            except OSError as exc:
                raise StorageUnavailable(exc) from exc

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    async def discard(self) -> None:
        try:
            await self.close()
        except StorageUnavailable:
            pass  # discarding anyway
        try:
            await aiofiles.os.remove(self.path)
        except OSError:
            pass  # never there, or the store is away: retention sweeps stale temp files
