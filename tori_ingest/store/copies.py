"""The copies that run a worker (`sql/009_copies.sql`): each reports its pool every few seconds.

Written by the worker (`worker.copies`), read by the dashboard and `/metrics`. A copy that
stops cleanly deletes its row; one that dies stops beating and shows as stalled.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from tori_ingest.core.dashboard import CopyStatus
from tori_ingest.core.vocab import Status

FORGET_AFTER_S = 3600  # a dead copy's row is shown (as stalled) this long, then dropped


@dataclass(frozen=True)
class Report:
    """What one copy says about itself."""

    name: str
    host: str
    pid: int
    version: str
    stalled_after_s: float
    processes: int
    busy: int
    process_starts: int
    running: Sequence[uuid.UUID]


# The Procrastinate worker ids of the jobs it runs are added to the row's (the last few kept).
# Procrastinate's table is read directly, as `jobs` does (its columns are checked at start-up).
_BEAT = """
WITH seen AS (
    SELECT DISTINCT q.worker_id FROM tori_jobs j
    JOIN procrastinate_jobs q ON q.id = j.procrastinate_job_id
    WHERE j.id = ANY($9::uuid[]) AND q.worker_id IS NOT NULL
)
INSERT INTO tori_copies AS c (name, host, pid, version, stalled_after_s, processes, busy,
                              process_starts, running, worker_ids)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::uuid[], ARRAY(SELECT worker_id FROM seen))
ON CONFLICT (name) DO UPDATE SET heartbeat_at = now(), stalled_after_s = $5, processes = $6,
    busy = $7, process_starts = $8, running = $9::uuid[],
    worker_ids = (SELECT coalesce(array_agg(w ORDER BY w DESC), '{}') FROM (
        SELECT DISTINCT w FROM unnest(c.worker_ids || ARRAY(SELECT worker_id FROM seen)) w
        ORDER BY w DESC LIMIT $10) recent)
"""
MAX_WORKER_IDS = 5
_STALLED = "heartbeat_at < now() - make_interval(secs => stalled_after_s)"


async def beat(db: asyncpg.Pool, report: Report) -> None:
    await db.execute(
        _BEAT,
        report.name,
        report.host,
        report.pid,
        report.version,
        report.stalled_after_s,
        report.processes,
        report.busy,
        report.process_starts,
        list(report.running),
        MAX_WORKER_IDS,
    )


async def remove(db: asyncpg.Pool, name: str) -> None:
    await db.execute("DELETE FROM tori_copies WHERE name = $1", name)


async def forget_dead(db: asyncpg.Pool) -> int:
    """Drop the rows of copies silent for FORGET_AFTER_S; returns how many."""
    status = await db.execute(
        "DELETE FROM tori_copies WHERE heartbeat_at < now() - make_interval(secs => $1)",
        FORGET_AFTER_S,
    )
    return int(status.split()[-1])


async def census(db: asyncpg.Pool) -> tuple[int, int]:
    """(live, stalled) copies, for the `tori_copies` gauge."""
    row = await db.fetchrow(
        f"SELECT count(*) FILTER (WHERE NOT ({_STALLED})) AS live,"
        f" count(*) FILTER (WHERE {_STALLED}) AS stalled FROM tori_copies"
    )
    return row["live"], row["stalled"]


async def listing(db: asyncpg.Pool) -> list[CopyStatus]:
    """Every copy, live ones first, then by name. `busy` counts the copy's jobs running now,
    from the job rows the dashboard's Running list shows (not its last heartbeat), so the two
    never disagree."""
    rows = await db.fetch(
        f"""SELECT name, host, pid, version, started_at, processes,
                   coalesce(r.n, 0) AS busy,
                   greatest(process_starts - processes, 0) AS recycled,
                   cardinality(running) AS running, {_STALLED} AS stalled,
                   extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_s
            FROM tori_copies c
            LEFT JOIN (SELECT copy_name, count(*)::int AS n FROM tori_jobs
                       WHERE status = $1 GROUP BY copy_name) r ON r.copy_name = c.name
            ORDER BY stalled, name""",
        Status.RUNNING,
    )
    return [CopyStatus.model_validate(dict(r)) for r in rows]
