"""The retention purge's statements (TORI_RETENTION_DAYS): results and files of jobs that
ended long enough ago, and old idempotency keys. Job rows stay (small; 410 `expired`)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

_DUE = """
SELECT j.id, j.storage_key FROM tori_jobs j
WHERE j.purged_at IS NULL AND j.storage_key IS NOT NULL AND j.finished_at < now() - $1::interval
ORDER BY j.finished_at LIMIT $2
FOR UPDATE SKIP LOCKED
"""


async def purge_results(db: asyncpg.Pool, age: timedelta, limit: int) -> tuple[int, list[str]]:
    """One batch: up to `limit` due jobs lose their results and are marked purged, in one
    transaction (rows other copies are purging are skipped). Returns (jobs, their storage
    keys); the caller removes each file unless a job still within retention uses it."""
    async with db.acquire() as conn, conn.transaction():
        due = await conn.fetch(_DUE, age, limit)
        ids = [r["id"] for r in due]
        if ids:
            await conn.execute("DELETE FROM tori_results WHERE job_id = ANY($1::uuid[])", ids)
            await conn.execute(
                "UPDATE tori_jobs SET purged_at = now() WHERE id = ANY($1::uuid[])", ids
            )
    return len(ids), sorted({r["storage_key"] for r in due})


async def purge_idempotency_keys(db: asyncpg.Pool, age: timedelta) -> int:
    status = await db.execute(
        "DELETE FROM tori_idempotency WHERE created_at < now() - $1::interval", age
    )
    return int(status.split()[-1])
