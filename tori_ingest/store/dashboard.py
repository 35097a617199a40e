"""Reads for the operator dashboard: queue ages, throughput over time, running jobs, failures.

All from Postgres, so every copy shows the same numbers. `owner` (a token name) limits each
read to that owner's jobs; None reads every job. Statuses are passed as parameters.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg

from tori_ingest.core.dashboard import BUCKETS, Bucket, Failure, RunningJob
from tori_ingest.core.models import ErrorInfo
from tori_ingest.core.vocab import Lane, Status

_OWNER = "($1::text IS NULL OR owner = $1)"

# Jobs that ended, per slot: (succeeded, failed, pages of the succeeded). Deduplicated jobs
# did no work and are left out, so `pages` sums to what tori_pages_processed_total counts.
_ENDED = f"""
SELECT to_timestamp(floor(extract(epoch FROM finished_at) / $3::int) * $3::int) AS t,
       count(*) FILTER (WHERE status = $4) AS n_succeeded,
       count(*) FILTER (WHERE status = $5) AS n_failed,
       coalesce(sum(pages_total) FILTER (WHERE status = $4), 0) AS pages
FROM tori_jobs
WHERE finished_at >= $2 AND NOT deduplicated AND {_OWNER}
GROUP BY 1
"""
# The queue over time, from the rows' own timestamps: +1 when a job was created (or at the
# window's start, for one created before it), -1 when it left the queue (started, or ended
# without starting), summed per second. Jobs queued now count as waiting since creation, so the
# queue now is exactly today's depth; a job that was retried or re-queued is approximated.
_QUEUE_EDGES = f"""
WITH j AS (
    SELECT lane, created_at,
           CASE WHEN status = $3 THEN NULL ELSE coalesce(started_at, finished_at) END AS left_at
    FROM tori_jobs
    WHERE (status = ANY($4::text[]) OR finished_at >= $2) AND {_OWNER}
)
SELECT lane, floor(extract(epoch FROM at))::bigint AS s, sum(d)::int AS d FROM (
    SELECT lane, greatest(created_at, $2) AS at, 1 AS d FROM j
    WHERE left_at IS NULL OR left_at >= $2
    UNION ALL
    SELECT lane, left_at, -1 FROM j WHERE left_at >= $2
) edges
GROUP BY 1, 2 ORDER BY 2
"""


async def queue_ages(db: asyncpg.Pool, owner: str | None = None) -> dict[Lane, float]:
    """Seconds the oldest queued job of each lane has waited (lanes with none left out)."""
    rows = await db.fetch(
        f"""SELECT lane, extract(epoch FROM now() - min(created_at))::float8 AS age
            FROM tori_jobs WHERE status = $2 AND {_OWNER} GROUP BY lane""",
        owner,
        Status.QUEUED,
    )
    return {Lane(r["lane"]): max(r["age"], 0.0) for r in rows}


async def throughput(
    db: asyncpg.Pool, bucket_s: int, owner: str | None = None
) -> tuple[list[Bucket], int, int]:
    """BUCKETS slots of `bucket_s` seconds ending now, and (pages, jobs) of the last minute."""
    now: datetime = await db.fetchval("SELECT now()")
    start = int(now.timestamp() // bucket_s - (BUCKETS - 1)) * bucket_s
    first = datetime.fromtimestamp(start, tz=now.tzinfo)
    ended = await db.fetch(_ENDED, owner, first, bucket_s, Status.SUCCEEDED, Status.FAILED)
    by_slot = {r["t"]: r for r in ended}
    edges = await db.fetch(
        _QUEUE_EDGES, owner, first, Status.QUEUED, [str(Status.QUEUED), str(Status.RUNNING)]
    )
    peaks = _queue_peaks(edges, start, bucket_s)
    buckets = []
    for i, queued in enumerate(peaks):
        t = first + timedelta(seconds=bucket_s * i)
        row = by_slot.get(t)
        buckets.append(
            Bucket(
                t=t,
                succeeded=row["n_succeeded"] if row else 0,
                failed=row["n_failed"] if row else 0,
                pages=row["pages"] if row else 0,
                queued=queued,
            )
        )
    last = await db.fetchrow(
        f"""SELECT coalesce(sum(pages_total) FILTER (WHERE status = $2), 0) AS pages,
                   count(*) AS jobs
            FROM tori_jobs WHERE finished_at >= now() - interval '1 minute'
              AND status = ANY($3::text[]) AND NOT deduplicated AND {_OWNER}""",
        owner,
        Status.SUCCEEDED,
        [str(Status.SUCCEEDED), str(Status.FAILED)],
    )
    return buckets, last["pages"], last["jobs"]


def _queue_peaks(edges: list[asyncpg.Record], start: int, bucket_s: int) -> list[dict[Lane, int]]:
    """The highest queue of each slot, per lane, from per-second changes (in time order): a
    burst that fills and drains within one slot still shows (the end of a slot would hide it).
    Changes after the last slot (jobs created since `now` was read) count in the last one."""
    depth = dict.fromkeys(Lane, 0)
    peaks: list[dict[Lane, int]] = []
    j = 0
    for i in range(BUCKETS):
        peak = dict(depth)  # the queue as the slot begins
        end = start + bucket_s * (i + 1) if i < BUCKETS - 1 else None
        while j < len(edges) and (end is None or edges[j]["s"] < end):
            lane = Lane(edges[j]["lane"])
            depth[lane] += edges[j]["d"]
            peak[lane] = max(peak[lane], depth[lane])
            j += 1
        peaks.append(peak)
    return peaks


async def running(db: asyncpg.Pool, owner: str | None = None, limit: int = 50) -> list[RunningJob]:
    """Running jobs, longest-running first, with the copy whose pool runs each (written by
    the run that started it)."""
    rows = await db.fetch(
        f"""SELECT j.id, j.filename, j.lane, j.pages_done, j.pages_total, j.started_at,
                   j.attempts, j.version, j.copy_name
            FROM tori_jobs j WHERE j.status = $2 AND {_OWNER}
            ORDER BY j.started_at, j.id LIMIT $3""",
        owner,
        Status.RUNNING,
        limit,
    )
    return [
        RunningJob.model_validate(
            {**{k: v for k, v in r.items() if k != "id"}, "job_id": str(r["id"])}
        )
        for r in rows
    ]


async def failures(db: asyncpg.Pool, owner: str | None = None, limit: int = 20) -> list[Failure]:
    """The most recent failed jobs (erased ones left out, as `GET /jobs` does)."""
    rows = await db.fetch(
        f"""SELECT id, filename, lane, error_code, error_message, finished_at, attempts
            FROM tori_jobs WHERE status = $2 AND erased_at IS NULL AND {_OWNER}
            ORDER BY finished_at DESC NULLS LAST, id LIMIT $3""",
        owner,
        Status.FAILED,
        limit,
    )
    return [
        Failure(
            job_id=str(r["id"]),
            filename=r["filename"],
            lane=r["lane"],
            error=ErrorInfo(code=r["error_code"], message=r["error_message"] or ""),
            finished_at=r["finished_at"],
            attempts=r["attempts"],
        )
        for r in rows
    ]


async def owned(db: asyncpg.Pool, job_ids: list[str], owner: str) -> set[str]:
    """Which of `job_ids` belong to `owner` (the live feed of a non-admin viewer)."""
    rows = await db.fetch(
        "SELECT id::text AS id FROM tori_jobs WHERE id = ANY($1::uuid[]) AND owner = $2",
        [uuid.UUID(i) for i in job_ids],
        owner,
    )
    return {r["id"] for r in rows}
