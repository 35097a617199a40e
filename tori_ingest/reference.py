"""By-reference submits (SPEC §4): PDFs already on the shared volume under TORI_IMPORT_DIR.

Nothing is uploaded or copied; the job's storage key points into the import tree. A path must
stay inside that tree after resolving symlinks and `..`, or it is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tori_ingest import errors
from tori_ingest.errors import ApiError
from tori_ingest.upload import MAGIC_WINDOW, PDF_MAGIC

MAX_PATHS = 1000
HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Referenced:
    relative: str
    sha256: str
    size: int


def resolve(import_dir: Path, raw: object) -> tuple[str, Path]:
    """(relative path, absolute path) of a file inside the import tree; 400 otherwise."""
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise ApiError(400, errors.BAD_REQUEST, "each path must be a non-empty string")
    relative = PurePosixPath(raw)
    if relative.is_absolute() or ".." in relative.parts:
        raise ApiError(400, errors.BAD_REQUEST, f"path {raw!r} must be relative, without '..'")
    target = (import_dir / relative).resolve()
    if not target.is_relative_to(import_dir):
        raise ApiError(400, errors.BAD_REQUEST, f"path {raw!r} leaves the import directory")
    return str(relative), target


def inspect(path: Path, raw: str, max_bytes: int) -> Referenced:
    """Size, magic bytes and sha256 of one file (blocking: run it in a thread)."""
    if not path.is_file():
        raise ApiError(400, errors.BAD_REQUEST, f"no such file under the import directory: {raw!r}")
    size = path.stat().st_size
    if size == 0:
        raise ApiError(400, errors.EMPTY_FILE, f"{raw!r} is empty")
    if size > max_bytes:
        raise ApiError(413, errors.TOO_LARGE, f"{raw!r} is larger than {max_bytes // 2**20} MB")
    digest = hashlib.sha256()
    with path.open("rb") as f:
        head = f.read(MAGIC_WINDOW)
        if PDF_MAGIC not in head:
            raise ApiError(415, errors.NOT_A_PDF, f"{raw!r} is not a PDF (no %PDF- header)")
        digest.update(head)
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return Referenced(relative=raw, sha256=digest.hexdigest(), size=size)


async def collect(import_dir: Path | None, body: dict, max_bytes: int) -> list[Referenced]:
    if import_dir is None:
        raise ApiError(400, errors.BAD_REQUEST, "by-reference submits are off: set TORI_IMPORT_DIR")
    raw_paths = body.get("paths", [body["path"]] if "path" in body else None)
    if not isinstance(raw_paths, list) or not raw_paths:
        raise ApiError(400, errors.BAD_REQUEST, 'expected {"path": "..."} or {"paths": [...]}')
    if len(raw_paths) > MAX_PATHS:
        raise ApiError(413, errors.TOO_LARGE, f"at most {MAX_PATHS} paths per request")
    resolved = [resolve(import_dir, raw) for raw in raw_paths]
    found = []
    for relative, path in resolved:
        item = await asyncio.to_thread(inspect, path, relative, max_bytes)
        found.append(Referenced(relative=relative, sha256=item.sha256, size=item.size))
    return found
