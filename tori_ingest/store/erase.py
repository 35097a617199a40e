"""Taking a document back (`DELETE /jobs/{id}?erase=true`): one transaction that leaves a
bare row behind, so the job answers 410 and nothing says which document it was."""

from __future__ import annotations

import uuid

import asyncpg

from tori_ingest.core.vocab import ACTIVE, ErrorCode, Status
from tori_ingest.store.backend import Storage
from tori_ingest.store.files import remove_if_unused


async def take_back(db: asyncpg.Pool, storage: Storage, job_id: uuid.UUID) -> None:
    """Take a document back: cancel the job if it is still active, delete its result and the
    idempotency keys that name it, scrub the row (kept bare: it answers 410): no file name,
    hash, size, storage key, callback URL or summary is left to say which document it was or
    where its events went (sql/013_erase_scrub.sql; the deliveries' copies go by trigger).
    Then its file goes too, unless another job still needs the same bytes."""
    async with db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT status, storage_key, procrastinate_job_id FROM tori_jobs"
            " WHERE id = $1 FOR UPDATE",
            job_id,
        )
        if row is None:
            return
        if Status(row["status"]) in ACTIVE and row["procrastinate_job_id"] is not None:
            await conn.execute(
                "SELECT procrastinate_cancel_job_v1($1, true, false)", row["procrastinate_job_id"]
            )
        await conn.execute("DELETE FROM tori_results WHERE job_id = $1", job_id)
        await conn.execute("DELETE FROM tori_idempotency WHERE $1 = ANY(job_ids)", job_id)
        await conn.execute(
            """UPDATE tori_jobs SET erased_at = now(), purged_at = coalesce(purged_at, now()),
                      status = CASE WHEN status = ANY($2::text[]) THEN $3 ELSE status END,
                      error_code = CASE WHEN status = ANY($2::text[]) THEN $4 ELSE error_code END,
                      finished_at = coalesce(finished_at, now()),
                      password = NULL, filename = '', summary = NULL, owner_ref = NULL,
                      sha256 = NULL, bytes = NULL, storage_key = NULL, callback_url = NULL
               WHERE id = $1""",
            job_id,
            [str(s) for s in ACTIVE],
            Status.CANCELLED,
            ErrorCode.CANCELLED,
        )
    if row["storage_key"] is not None:
        await remove_if_unused(db, storage, row["storage_key"])
