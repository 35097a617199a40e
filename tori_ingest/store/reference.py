"""By-reference submits: PDFs already on the shared volume under TORI_IMPORT_DIR.

Each file is copied into the store at submit time (content-addressed, like an upload), so
the job owns the bytes it was accepted for: a symlink or file swapped in later cannot change
what the worker reads, and dedup is keyed by the bytes actually hashed. The file is opened
beneath the import root one component at a time without following links (`O_NOFOLLOW`), and
must be a regular file (a FIFO or device is refused without blocking: `O_NONBLOCK`).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tori_ingest.core.errors import Refused, StorageUnavailable
from tori_ingest.core.formats import MAGIC_WINDOW, check_document
from tori_ingest.core.models import MAX_PATHS, ByReference
from tori_ingest.core.vocab import ErrorCode
from tori_ingest.store.storage import Storage

HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Referenced:
    relative: str
    sha256: str
    size: int
    temp: Path  # the copy in the store's temp area, to commit


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


def copy_in(root: Path, relative: str, max_bytes: int, storage: Storage) -> Referenced:
    """Open safely, check, hash and copy one file into the store's temp area (blocking)."""
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
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused(ErrorCode.BAD_REQUEST, f"{relative!r} is not a regular file")
        if info.st_size > max_bytes:
            raise Refused(ErrorCode.TOO_LARGE, f"{relative!r} is larger than {max_bytes >> 20} MB")
        os.set_blocking(source.fileno(), True)
        return _copy(source, relative, max_bytes, storage)


def _copy(source: object, relative: str, max_bytes: int, storage: Storage) -> Referenced:
    temp = storage.writer().path
    digest, size = hashlib.sha256(), 0
    try:
        with temp.open("wb") as target:
            head = source.read(MAGIC_WINDOW)  # type: ignore[attr-defined]
            check_document(head, len(head), final=len(head) < MAGIC_WINDOW, name=repr(relative))
            chunk = head
            while chunk:
                size += len(chunk)
                if size > max_bytes:  # it grew since fstat
                    raise Refused(ErrorCode.TOO_LARGE, f"{relative!r} is larger than allowed")
                digest.update(chunk)
                target.write(chunk)
                chunk = source.read(HASH_CHUNK)  # type: ignore[attr-defined]
        check_document(head, size, final=True, name=repr(relative))
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StorageUnavailable(exc) from exc
        raise
    return Referenced(relative=relative, sha256=digest.hexdigest(), size=size, temp=temp)


async def collect(
    import_dir: Path | None, body: ByReference, max_bytes: int, storage: Storage
) -> list[Referenced]:
    """Every named file, copied into the store's temp area; nothing is left on a refusal."""
    if import_dir is None:
        raise Refused(ErrorCode.BAD_REQUEST, "by-reference submits are off: set TORI_IMPORT_DIR")
    raw_paths = body.paths if body.paths is not None else [body.path] if body.path else None
    if not raw_paths:
        raise Refused(ErrorCode.BAD_REQUEST, 'expected {"path": "..."} or {"paths": [...]}')
    if len(raw_paths) > MAX_PATHS:
        raise Refused(ErrorCode.TOO_LARGE, f"at most {MAX_PATHS} paths per request")
    relatives = [relative_path(raw) for raw in raw_paths]
    found: list[Referenced] = []
    try:
        for relative in relatives:
            found.append(await asyncio.to_thread(copy_in, import_dir, relative, max_bytes, storage))
    except BaseException:
        for item in found:
            item.temp.unlink(missing_ok=True)
        raise
    return found
