"""By-reference submits: documents already under TORI_IMPORT_DIR or TORI_IMPORT_URL.

Each file is copied into the store at submit time (content-addressed, like an upload), so
the job owns the bytes it was accepted for: a symlink, file or object swapped in later
cannot change what the worker reads, and dedup is keyed by the bytes actually hashed.

A relative path names a file under TORI_IMPORT_DIR (or, with only TORI_IMPORT_URL set, an
object under that prefix); a full `s3://…` URL names an object and must lie under
TORI_IMPORT_URL. Files are opened beneath the import root one component at a time without
following links (`O_NOFOLLOW`) and must be regular files (a FIFO is refused at once:
`O_NONBLOCK`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import IO

import obstore

from tori_ingest.core.errors import Refused
from tori_ingest.core.formats import check_document
from tori_ingest.core.models import MAX_PATHS, ByReference
from tori_ingest.core.settings import Settings
from tori_ingest.core.vocab import ErrorCode
from tori_ingest.store.backend import Storage
from tori_ingest.store.bucket import connect, guarded

READ_CHUNK = 1024 * 1024
COPY_CONCURRENCY = 4  # a batch of 1,000 small objects is latency-bound, not bandwidth-bound


@dataclass(frozen=True)
class Referenced:
    relative: str  # as the request named it
    sha256: str
    size: int
    temp: str  # the copy's temp entry in the store, to commit

    @property
    def filename(self) -> str:
        return self.relative.rsplit("/", 1)[-1]


def relative_path(raw: object) -> str:
    """The path as given, checked: relative, no `..`, no NUL; 400 otherwise."""
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise Refused(ErrorCode.BAD_REQUEST, "each path must be a non-empty string")
    relative = PurePosixPath(raw)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise Refused(ErrorCode.BAD_REQUEST, f"path {raw!r} must be relative, without '..'")
    return str(relative)


def open_beneath(root: Path, relative: str) -> int:
    """A read-only fd for `relative` under `root`, following no symlink on the way."""
    parts = PurePosixPath(relative).parts
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)


def open_file(root: Path, relative: str, max_bytes: int) -> IO[bytes]:
    """Open safely and check one file of the import tree (blocking)."""
    try:
        fd = open_beneath(root, relative)
    except OSError as exc:
        reason = {
            errno.ELOOP: "is a symbolic link",
            errno.ENOTDIR: "passes through a symbolic link or a file",
            errno.ENOENT: "does not exist",
        }.get(exc.errno or 0, "cannot be opened")
        message = f"{relative!r} {reason} under the import directory"
        raise Refused(ErrorCode.BAD_REQUEST, message) from None
    try:  # checked on the fd before wrapping it: fdopen of a directory raises, fd still open
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(ErrorCode.BAD_REQUEST, f"{relative!r} is not a regular file")
        _check_size(relative, info.st_size, max_bytes)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except OSError as exc:  # a file's trouble, never to be read as the database's
        os.close(fd)
        raise Refused(
            ErrorCode.BAD_REQUEST, f"{relative!r} cannot be read: {exc.strerror}"
        ) from None
    except BaseException:
        os.close(fd)
        raise


def _check_size(relative: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise Refused(ErrorCode.TOO_LARGE, f"{relative!r} is larger than {max_bytes >> 20} MB")


class Imports:
    """The trees a by-reference submit may name, from the settings of this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.tori_import_dir
        self.url = settings.tori_import_url.rstrip("/") if settings.tori_import_url else None

    @cached_property
    def bucket(self) -> obstore.store.S3Store:
        assert self.url is not None
        return connect(self.url, self.settings)

    def locate(self, raw: object) -> tuple[str, bool]:
        """(relative path, whether it names a bucket object) for one requested path."""
        if isinstance(raw, str) and raw.startswith("s3://"):
            if self.url is None or not raw.startswith(self.url + "/"):
                message = f"{raw!r} is not under TORI_IMPORT_URL ({self.url or 'unset'})"
                raise Refused(ErrorCode.BAD_REQUEST, message)
            return relative_path(raw[len(self.url) + 1 :]), True
        relative = relative_path(raw)
        if self.root is None and self.url is None:
            raise Refused(
                ErrorCode.BAD_REQUEST,
                "by-reference submits are off: set TORI_IMPORT_DIR or TORI_IMPORT_URL",
            )
        return relative, self.root is None

    async def chunks(self, relative: str, in_bucket: bool, max_bytes: int) -> AsyncIterator[bytes]:
        if in_bucket:
            async for chunk in self._object_chunks(relative, max_bytes):
                yield chunk
            return
        assert self.root is not None
        source = await asyncio.to_thread(open_file, self.root, relative, max_bytes)
        try:
            while True:
                try:
                    chunk = await asyncio.to_thread(source.read, READ_CHUNK)
                except OSError as exc:  # the file's trouble (EIO…), not the database's
                    message = f"{relative!r} cannot be read: {exc.strerror}"
                    raise Refused(ErrorCode.BAD_REQUEST, message) from None
                if not chunk:
                    break
                yield chunk
        finally:
            source.close()

    async def _object_chunks(self, relative: str, max_bytes: int) -> AsyncIterator[bytes]:
        with guarded():
            try:
                result = await obstore.get_async(self.bucket, relative)
            except FileNotFoundError:
                message = f"{relative!r} does not exist under TORI_IMPORT_URL"
                raise Refused(ErrorCode.BAD_REQUEST, message) from None
            _check_size(relative, result.meta["size"], max_bytes)
            async for chunk in result.stream(min_chunk_size=READ_CHUNK):
                yield bytes(chunk)


async def import_one(imports: Imports, raw: object, max_bytes: int, storage: Storage) -> Referenced:
    """Hash and copy one named document into the store's temp area; nothing stays on error."""
    relative, in_bucket = imports.locate(raw)
    writer = storage.writer()
    try:
        async for chunk in imports.chunks(relative, in_bucket, max_bytes):
            if writer.size + len(chunk) > max_bytes:  # it grew since it was measured
                raise Refused(ErrorCode.TOO_LARGE, f"{relative!r} is larger than allowed")
            await writer.write(chunk)
            check_document(writer.head, writer.size, final=False, name=repr(relative))
        await writer.close()
        check_document(writer.head, writer.size, final=True, name=repr(relative))
    except BaseException:
        await writer.discard()
        raise
    return Referenced(relative=relative, sha256=writer.sha256, size=writer.size, temp=writer.temp)


async def collect(
    imports: Imports, body: ByReference, max_bytes: int, storage: Storage
) -> list[Referenced]:
    """Every named file, copied into the store's temp area; nothing is left on a refusal."""
    raw_paths = body.paths if body.paths is not None else [body.path] if body.path else None
    if not raw_paths:
        raise Refused(ErrorCode.BAD_REQUEST, 'expected {"path": "..."} or {"paths": [...]}')
    if len(raw_paths) > MAX_PATHS:
        raise Refused(ErrorCode.TOO_LARGE, f"at most {MAX_PATHS} paths per request")
    for raw in raw_paths:  # every path checked before any byte is copied
        imports.locate(raw)
    found: dict[int, Referenced] = {}
    gate = asyncio.Semaphore(COPY_CONCURRENCY)

    async def one(n: int, raw: object) -> None:
        async with gate:
            found[n] = await import_one(imports, raw, max_bytes, storage)

    try:
        async with asyncio.TaskGroup() as group:
            for n, raw in enumerate(raw_paths):
                group.create_task(one(n, raw))
    except BaseException as exc:
        for item in found.values():
            with contextlib.suppress(Exception):
                await storage.discard(item.temp)
        if isinstance(exc, BaseExceptionGroup):  # the first refusal, as a plain error
            raise exc.exceptions[0] from None
        raise
    return [found[n] for n in range(len(raw_paths))]
