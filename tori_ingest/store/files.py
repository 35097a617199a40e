"""Who may delete a stored file, and when: one advisory lock per content-addressed key.

Files are shared by every job of the same bytes, so "delete if unused" (a failed upload's
undo, retention) and "use" (a new job inserted for that key) must not interleave: both take
`pg_advisory_xact_lock` on the key. A request that found its file already stored keeps its
own temp copy until its jobs are committed, and puts it in place if the file vanished
meanwhile; a deleter re-checks the references under the lock.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from tori_ingest.store.backend import Storage

# A file is still needed by any job that references it and has not been purged (finished
# within retention, or not finished yet).
_USED = """
SELECT EXISTS (SELECT 1 FROM tori_jobs WHERE storage_key = $1
               AND purged_at IS NULL
               AND (finished_at IS NULL OR $2::interval IS NULL OR finished_at >= now() - $2))
"""


async def lock_keys(conn: asyncpg.Connection, keys: list[str]) -> None:
    """Lock the keys for this transaction, in a fixed order (two requests never deadlock)."""
    for key in sorted(set(keys)):
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def ensure_stored(
    conn: asyncpg.Connection, storage: Storage, files: list[tuple[str, str]]
) -> None:
    """Inside the transaction that inserts the jobs: every key is locked and its file there
    (a concurrent undo may have removed it since the commit: the kept temp copy goes back)."""
    await lock_keys(conn, [key for key, _ in files])
    for key, temp in files:
        await storage.restore(key, temp)


async def remove_if_unused(
    db: asyncpg.Pool, storage: Storage, key: str, retention: timedelta | None = None
) -> bool:
    """Delete a stored file unless a job still needs it; True when it was deleted."""
    async with db.acquire() as conn, conn.transaction():
        await lock_keys(conn, [key])
        if await conn.fetchval(_USED, key, retention):
            return False
        await storage.remove(key)
    return True
