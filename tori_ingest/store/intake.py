"""From accepted documents to jobs: content addresses, idempotency, dedup, and the atomic
insert of them all (`accept`, what `POST /jobs` calls once its input is checked).

One request = one transaction: either every job of it exists (each with its queue entry) and
its idempotency key is recorded, or nothing does, and no file it stored is left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass

import asyncpg
import orjson

from tori_ingest.core.errors import Refused
from tori_ingest.core.vocab import ErrorCode, Lane, OcrMode
from tori_ingest.store import jobs, views
from tori_ingest.store.backend import Storage
from tori_ingest.store.db import DB_UNAVAILABLE_ERRORS
from tori_ingest.store.files import ensure_stored, remove_if_unused


@dataclass(frozen=True)
class Outcome:
    rows: list[asyncpg.Record]
    replayed: bool  # the same idempotent request was already answered: these are its jobs


def fingerprint(new_jobs: list[jobs.NewJob], extra: dict[str, object]) -> str:
    """What a request asked for: same documents and same options ⇒ same fingerprint."""
    what = {
        "documents": [j.sha256 for j in new_jobs],
        "lane": new_jobs[0].lane if new_jobs else None,
        "password": hashlib.sha256((new_jobs[0].password or "").encode()).hexdigest()
        if new_jobs
        else None,
        **extra,
    }
    return hashlib.sha256(orjson.dumps(what, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def submit(
    db: asyncpg.Pool,
    new_jobs: list[jobs.NewJob],
    *,
    idempotency_key: str | None,
    request_fingerprint: str,
    reprocess: bool,
    storage: Storage | None = None,
    files: list[tuple[str, str]] | None = None,
) -> Outcome:
    """Create the jobs (or answer a replay); `files` (key, kept temp copy) are guarded so no
    concurrent delete can leave a job without its file."""
    owner = (new_jobs[0].owner if new_jobs else None) or ""  # keys are per owner
    if idempotency_key:
        earlier = await _replay(db, owner, idempotency_key, request_fingerprint)
        if earlier is not None:
            return Outcome(earlier, replayed=True)
    try:
        async with db.acquire() as conn, conn.transaction():
            if storage is not None and files:
                await ensure_stored(conn, storage, files)
            rows = []
            for job in new_jobs:
                row = None if reprocess else await jobs.create_deduplicated(conn, job)
                rows.append(row or await jobs.create(conn, job))
            if idempotency_key:
                await conn.execute(
                    "INSERT INTO tori_idempotency (owner, key, fingerprint, job_ids)"
                    " VALUES ($1, $2, $3, $4)",
                    owner,
                    idempotency_key,
                    request_fingerprint,
                    [r["id"] for r in rows],
                )
    except asyncpg.UniqueViolationError:
        # A concurrent request with the same key won the race: answer as it was answered.
        earlier = await _replay(db, owner, idempotency_key or "", request_fingerprint)
        if earlier is None:
            raise
        return Outcome(earlier, replayed=True)
    return Outcome(rows, replayed=False)


async def _replay(
    db: asyncpg.Pool, owner: str, key: str, request_fingerprint: str
) -> list[asyncpg.Record] | None:
    found = await db.fetchrow(
        "SELECT fingerprint, job_ids FROM tori_idempotency WHERE owner = $1 AND key = $2",
        owner,
        key,
    )
    if found is None:
        return None
    if found["fingerprint"] != request_fingerprint:
        raise Refused(
            ErrorCode.IDEMPOTENCY_CONFLICT,
            "this Idempotency-Key was already used for a different request",
        )
    return await views.get_many(db, found["job_ids"])


@dataclass(frozen=True)
class JobMeta:
    """What a request says about all of its jobs."""

    lane: Lane
    password: str | None
    owner: str | None
    owner_ref: str | None
    callback_url: str | None = None  # webhook target (sql/008_webhooks.sql)
    ocr: OcrMode | None = None  # the job's own OCR mode; None: TORI_OCR


@dataclass(frozen=True)
class Incoming:
    """A file accepted into the store's temp area, waiting for its job."""

    filename: str
    sha256: str
    size: int
    temp: str  # its temp entry in the store


async def accept(
    db: asyncpg.Pool,
    storage: Storage,
    incoming: list[Incoming],
    meta: JobMeta,
    key: str | None,
    reprocess: bool,
    extra: dict[str, object],
) -> Outcome:
    """A request's files committed to their content addresses and its jobs created, or
    neither: files this request stored are removed again when the jobs could not be made.
    The temp entries are discarded either way."""
    created_files: list[str] = []
    try:
        new_jobs = []
        for f in incoming:
            storage_key, created = await storage.commit(f.temp, f.sha256)
            if created:
                created_files.append(storage_key)
            new_jobs.append(
                jobs.NewJob(
                    f.sha256,
                    f.filename,
                    f.size,
                    storage_key,
                    meta.lane,
                    meta.password,
                    meta.owner,
                    meta.owner_ref,
                    meta.callback_url,
                    meta.ocr,
                )
            )
        return await submit(
            db,
            new_jobs,
            idempotency_key=key,
            request_fingerprint=fingerprint(new_jobs, extra),
            reprocess=reprocess,
            storage=storage,
            files=[(j.storage_key, f.temp) for j, f in zip(new_jobs, incoming, strict=True)],
        )
    except BaseException:
        await _remove_unreferenced(db, storage, created_files)
        raise
    finally:
        for f in incoming:  # copies of bytes that were already stored, kept until now
            await storage.discard(f.temp)


async def _remove_unreferenced(db: asyncpg.Pool, storage: Storage, keys: list[str]) -> None:
    """Undo the files a failed request stored, unless another request's job now uses one
    (content addressing shares files): checked under the key's lock. With the database
    unreachable no job can be inserted for it either, so the file simply goes."""
    for key in keys:
        try:
            await remove_if_unused(db, storage, key)
        except DB_UNAVAILABLE_ERRORS:
            with contextlib.suppress(Exception):
                await storage.remove(key)
