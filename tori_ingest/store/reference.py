"""By-reference submits: PDFs already on the shared volume under TORI_IMPORT_DIR.

Nothing is uploaded or copied; the job's storage key points into the import tree. A path must
stay inside that tree after resolving symlinks and `..`, or it is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tori_ingest.core.errors import Refused
from tori_ingest.core.formats import MAGIC_WINDOW, check_pdf
from tori_ingest.core.models import MAX_PATHS, ByReference
from tori_ingest.core.vocab import ErrorCode

HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Referenced:
    relative: str
    sha256: str
    size: int


def resolve(import_dir: Path, raw: object) -> tuple[str, Path]:
    """(relative path, absolute path) of a file inside the import tree; 400 otherwise."""
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise Refused(ErrorCode.BAD_REQUEST, "each path must be a non-empty string")
    relative = PurePosixPath(raw)
    if relative.is_absolute() or ".." in relative.parts:
        raise Refused(ErrorCode.BAD_REQUEST, f"path {raw!r} must be relative, without '..'")
    target = (import_dir / relative).resolve()
    if not target.is_relative_to(import_dir):
        raise Refused(ErrorCode.BAD_REQUEST, f"path {raw!r} leaves the import directory")
    return str(relative), target


def inspect(path: Path, raw: str, max_bytes: int) -> Referenced:
    """Size, magic bytes and sha256 of one file (blocking: run it in a thread)."""
    if not path.is_file():
        raise Refused(ErrorCode.BAD_REQUEST, f"no such file under the import directory: {raw!r}")
    size = path.stat().st_size
    if size == 0:
        raise Refused(ErrorCode.EMPTY_FILE, f"{raw!r} is empty")
    if size > max_bytes:
        raise Refused(ErrorCode.TOO_LARGE, f"{raw!r} is larger than {max_bytes // 2**20} MB")
    digest = hashlib.sha256()
    with path.open("rb") as f:
        head = f.read(MAGIC_WINDOW)
        check_pdf(head, size, final=True, name=repr(raw))
        digest.update(head)
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return Referenced(relative=raw, sha256=digest.hexdigest(), size=size)


async def collect(import_dir: Path | None, body: ByReference, max_bytes: int) -> list[Referenced]:
    if import_dir is None:
        raise Refused(ErrorCode.BAD_REQUEST, "by-reference submits are off: set TORI_IMPORT_DIR")
    raw_paths = body.paths if body.paths is not None else [body.path] if body.path else None
    if not raw_paths:
        raise Refused(ErrorCode.BAD_REQUEST, 'expected {"path": "..."} or {"paths": [...]}')
    if len(raw_paths) > MAX_PATHS:
        raise Refused(ErrorCode.TOO_LARGE, f"at most {MAX_PATHS} paths per request")
    resolved = [resolve(import_dir, raw) for raw in raw_paths]
    found = []
    for relative, path in resolved:
        item = await asyncio.to_thread(inspect, path, relative, max_bytes)
        found.append(Referenced(relative=relative, sha256=item.sha256, size=item.size))
    return found
