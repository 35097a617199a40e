"""Counters behind rate limits and admission (`tori_rate_limits`, queued jobs), shared by
every copy because they live in Postgres."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from tori_ingest.core.vocab import Lane, Status

_HIT = """
INSERT INTO tori_rate_limits (bucket, window_start, hits)
VALUES ($1, to_timestamp($2), 1)
ON CONFLICT (bucket, window_start) DO UPDATE SET hits = tori_rate_limits.hits + 1
RETURNING hits
"""


async def hit(db: asyncpg.Pool, bucket: str, window_start: float) -> int:
    """Count one event of `bucket` in the window that starts at `window_start`; the count."""
    return int(await db.fetchval(_HIT, bucket, window_start))


async def purge(db: asyncpg.Pool, older_than: timedelta) -> int:
    """Drop windows long over (they only grow the table)."""
    status = await db.execute(
        "DELETE FROM tori_rate_limits WHERE window_start < now() - $1::interval", older_than
    )
    return int(status.split()[-1])


async def queued(db: asyncpg.Pool, lane: Lane, owner: str | None, at_most: int) -> int:
    """Queued jobs of `lane` (of `owner`, when given), counted up to `at_most` (bounded)."""
    return int(
        await db.fetchval(
            """SELECT count(*) FROM (SELECT 1 FROM tori_jobs
               WHERE lane = $1 AND status = $2 AND ($3::text IS NULL OR owner = $3)
               LIMIT $4) q""",
            lane,
            Status.QUEUED,
            owner,
            at_most,
        )
    )
