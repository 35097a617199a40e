"""The store as a directory (one machine, or a volume every copy mounts).

Temp files are renamed into place (atomic on one file system), so committing costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiofiles
import aiofiles.os

from tori_ingest.core.errors import StorageUnavailable
from tori_ingest.store.backend import (
    TEMP_MAX_AGE_S,
    TEMP_PREFIX,
    Storage,
    TempWriter,
    key_for,
    new_temp,
)

READ_CHUNK = 1024 * 1024


class DirStorage(Storage):
    kind = "directory"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / TEMP_PREFIX.rstrip("/")
        self.location = str(root)

    def prepare(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key

    def writer(self) -> TempWriter:
        return FileWriter(new_temp(), self.root)

    async def commit(self, temp: str, sha256: str) -> tuple[str, bool]:
        key = key_for(sha256)
        final = self.path(key)
        try:
            if await aiofiles.os.path.exists(final):
                return key, False
            await aiofiles.os.makedirs(final.parent, exist_ok=True)
            await aiofiles.os.replace(self.root / temp, final)
        except OSError as exc:
            raise StorageUnavailable(exc) from exc
        return key, True

    async def restore(self, key: str, temp: str) -> None:
        final, source = self.path(key), self.root / temp
        try:
            if not await aiofiles.os.path.exists(final) and await aiofiles.os.path.exists(source):
                await aiofiles.os.makedirs(final.parent, exist_ok=True)
                await aiofiles.os.replace(source, final)
        except OSError as exc:
            raise StorageUnavailable(exc) from exc

    async def discard(self, temp: str) -> None:
        with contextlib.suppress(OSError):
            await aiofiles.os.remove(self.root / temp)

    async def remove(self, key: str) -> None:
        try:
            await aiofiles.os.remove(self.path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageUnavailable(exc) from exc

    @contextlib.asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        yield self.path(key)  # already local: the pool reads it in place

    async def read(self, key: str) -> AsyncIterator[bytes]:
        async with aiofiles.open(self.path(key), "rb") as file:
            while chunk := await file.read(READ_CHUNK):
                yield chunk

    async def size(self, key: str) -> int:
        return int((await aiofiles.os.stat(self.path(key))).st_size)

    async def problem(self) -> str | None:
        probe = self.tmp / f".probe-{os.getpid()}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            return f"storage not writable ({self.kind} {self.location}: {exc.strerror})"
        return None

    async def sweep_temp(self, max_age_s: float = TEMP_MAX_AGE_S) -> int:
        return await asyncio.to_thread(self._sweep, max_age_s)

    def _sweep(self, max_age_s: float) -> int:
        removed = 0
        cutoff = time.time() - max_age_s
        for path in self.tmp.glob("*.part"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


class FileWriter(TempWriter):
    """A temp file under the store's `tmp/`, opened on the first chunk."""

    def __init__(self, temp: str, root: Path) -> None:
        super().__init__(temp)
        self.path = root / temp
        self._file: aiofiles.threadpool.binary.AsyncBufferedIOBase | None = None

    async def _write(self, chunk: bytes) -> None:
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

    async def discard(self) -> None:
        with contextlib.suppress(StorageUnavailable):
            await self.close()
        with contextlib.suppress(OSError):
            await aiofiles.os.remove(self.path)
