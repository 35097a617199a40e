"""A long document's page-range parts (sql/016_job_parts.sql): planned with their queue entries,
started and ended fenced by the job's run, and listed for `GET /jobs/{id}`.

The job row stays `running` while its parts run; whichever part of a phase ends last (the job
row's lock orders them) starts the next phase, so exactly one merge happens.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from tori_ingest.core.vocab import Lane, PartPhase, Status
from tori_ingest.store.jobs import JOB_COLUMNS, queue_for
from tori_ingest.store.jobs import TASK_NAME as JOB_TASK_NAME

TASK_NAME = "tori.part"
READ, PREPARE, NLP = PartPhase.READ, PartPhase.PREPARE, PartPhase.NLP
QUEUED, RUNNING, SUCCEEDED = Status.QUEUED, Status.RUNNING, Status.SUCCEEDED  # a part's states


@dataclass(frozen=True)
class Planned:
    """One part to create: its pages and what it needs beyond the document (pickled)."""

    first: int
    last: int
    input: bytes | None = None


# The queue entry and the part's row, in one statement per part.
_INSERT = """
INSERT INTO tori_job_parts (job_id, run, phase, idx, first_page, last_page, input,
                            procrastinate_job_id)
SELECT $1, $2, $3, $4, $5, $6, $7, q FROM unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(
    $8::varchar, $9::varchar, $10::integer, NULL::text, NULL::text,
    jsonb_build_object('job_id', $1::uuid, 'phase', $3::text, 'idx', $4::int, 'run', $2::int),
    NULL::timestamptz)::procrastinate_job_to_defer_v1])) q
"""
_OWNED = "SELECT lane FROM tori_jobs WHERE id = $1 AND runs = $2 AND status = $3 FOR UPDATE"
# A part changed: the job's live state (sql/017_part_events.sql) goes out again.
_ANNOUNCE = "UPDATE tori_jobs SET parts_version = parts_version + 1 WHERE id = $1"


async def plan(
    db: asyncpg.Pool, job_id: uuid.UUID, run: int, phase: str, parts: list[Planned]
) -> bool:
    """Create the parts of a phase and queue them (in the job's lane, at its priority); False
    when the run no longer owns the job. Planning the read phase drops an older run's parts."""
    async with db.acquire() as conn, conn.transaction():
        lane = await conn.fetchval(_OWNED, job_id, run, Status.RUNNING)
        if lane is None:
            return False
        if phase == READ:
            await conn.execute("DELETE FROM tori_job_parts WHERE job_id = $1", job_id)
        queue, priority = queue_for(Lane(lane)), Lane(lane).priority
        await conn.executemany(
            _INSERT,
            [
                (job_id, run, phase, i, p.first, p.last, p.input, queue, TASK_NAME, priority)
                for i, p in enumerate(parts)
            ],
        )
        await conn.execute(_ANNOUNCE, job_id)
        if phase == READ:
            await conn.execute(
                "UPDATE tori_jobs SET pages_total = $2 WHERE id = $1", job_id, parts[-1].last
            )
    return True


async def save(db: asyncpg.Pool, job_id: uuid.UUID, run: int, phase: str, output: bytes) -> bool:
    """A phase done once for the whole document (prepare): one succeeded row."""
    async with db.acquire() as conn, conn.transaction():
        if await conn.fetchval(_OWNED, job_id, run, Status.RUNNING) is None:
            return False
        await conn.execute(
            """INSERT INTO tori_job_parts (job_id, run, phase, idx, first_page, last_page,
                                           status, output)
               VALUES ($1, $2, $3, 0, 0, 0, $4, $5)
               ON CONFLICT (job_id, phase, idx) DO UPDATE SET output = $5, run = $2""",
            job_id,
            run,
            phase,
            SUCCEEDED,
            output,
        )
    return True


async def start(
    db: asyncpg.Pool, job_id: uuid.UUID, phase: str, idx: int, run: int, copy: str
) -> tuple[asyncpg.Record, asyncpg.Record] | None:
    """queued → running on `copy`: (the part, its job with the password); None when the part
    is done, or its job ended or belongs to a newer run."""
    async with db.acquire() as conn, conn.transaction():
        job = await conn.fetchrow(
            f"""SELECT {JOB_COLUMNS}, password, runs, ocr FROM tori_jobs
                WHERE id = $1 AND runs = $2 AND status = $3""",
            job_id,
            run,
            Status.RUNNING,
        )
        if job is None:
            return None
        part = await conn.fetchrow(
            """UPDATE tori_job_parts SET status = $5, copy_name = $6
               WHERE job_id = $1 AND phase = $2 AND idx = $3 AND run = $4 AND status <> $7
               RETURNING first_page, last_page, input""",
            job_id,
            phase,
            idx,
            run,
            RUNNING,
            copy,
            SUCCEEDED,
        )
        if part is not None:
            await conn.execute(_ANNOUNCE, job_id)  # after the part changed: the event shows it
    return None if part is None else (part, job)


async def end(
    db: asyncpg.Pool, job_id: uuid.UUID, phase: str, idx: int, run: int, output: bytes
) -> bool | None:
    """Store a part's output; True when it was the phase's last (its caller merges), None when
    the run no longer owns the job (the output is dropped). NLP parts add their pages to
    `pages_done`."""
    async with db.acquire() as conn, conn.transaction():
        if await conn.fetchval(_OWNED, job_id, run, Status.RUNNING) is None:
            return None
        pages = await conn.fetchval(
            """UPDATE tori_job_parts SET status = $5, output = $6
               WHERE job_id = $1 AND phase = $2 AND idx = $3 AND run = $4 AND status <> $5
               RETURNING last_page - first_page + 1""",
            job_id,
            phase,
            idx,
            run,
            SUCCEEDED,
            output,
        )
        if pages is None:
            return None  # done already (a retry of a part that had ended)
        await conn.execute(
            "UPDATE tori_jobs SET pages_done = pages_done + $2, parts_version = parts_version + 1"
            " WHERE id = $1",
            job_id,
            pages if phase == NLP else 0,
        )
        left = await conn.fetchval(
            "SELECT count(*) FROM tori_job_parts WHERE job_id = $1 AND phase = $2 AND status <> $3",
            job_id,
            phase,
            SUCCEEDED,
        )
    return bool(left == 0)


async def outputs(db: asyncpg.Pool, job_id: uuid.UUID, phase: str) -> list[bytes]:
    rows = await db.fetch(
        "SELECT output FROM tori_job_parts WHERE job_id = $1 AND phase = $2 ORDER BY idx",
        job_id,
        phase,
    )
    return [row["output"] for row in rows]


async def requeue(db: asyncpg.Pool, job_id: uuid.UUID, phase: str, idx: int) -> None:
    """running → queued: the queue runs the part again (a shutdown, a transient error)."""
    await db.execute(
        """UPDATE tori_job_parts SET status = $4
           WHERE job_id = $1 AND phase = $2 AND idx = $3 AND status = $5""",
        job_id,
        phase,
        idx,
        QUEUED,
        RUNNING,
    )


async def died(db: asyncpg.Pool, job_id: uuid.UUID, phase: str, idx: int) -> int | None:
    """running → queued for a part whose copy or pool process died; returns its count of such
    deaths (None when the part is no longer running)."""
    deaths: int | None = await db.fetchval(
        """UPDATE tori_job_parts SET status = $4, copy_deaths = copy_deaths + 1
           WHERE job_id = $1 AND phase = $2 AND idx = $3 AND status = $5
           RETURNING copy_deaths""",
        job_id,
        phase,
        idx,
        QUEUED,
        RUNNING,
    )
    return deaths


# Work a free process would take before a job of this priority: ingest jobs and parts, due now.
_WAITING = """
SELECT EXISTS (SELECT 1 FROM procrastinate_jobs
               WHERE status = 'todo' AND priority >= $1 AND task_name = ANY($2::text[])
                 AND (scheduled_at IS NULL OR scheduled_at <= now())
                 AND args->>'job_id' IS DISTINCT FROM $3)
"""


async def others_waiting(db: asyncpg.Pool, lane: Lane, job_id: uuid.UUID) -> bool:
    """Whether other jobs (or parts) of `lane` or a higher one wait for a process: then every
    process has work, and splitting `job_id` would only add its parts' overhead."""
    found: bool = await db.fetchval(
        _WAITING, lane.priority, [TASK_NAME, JOB_TASK_NAME], str(job_id)
    )
    return found


async def listing(db: asyncpg.Pool | asyncpg.Connection, job_id: uuid.UUID) -> list[dict[str, Any]]:
    """The parts of the phase under way (reading, then NLP) for `GET /jobs/{id}`."""
    rows = await db.fetch(
        """SELECT phase, first_page, last_page, status, copy_name FROM tori_job_parts
           WHERE job_id = $1 AND phase <> $2
             AND phase = (CASE WHEN EXISTS (SELECT 1 FROM tori_job_parts
                                            WHERE job_id = $1 AND phase = $3) THEN $3 ELSE $4 END)
           ORDER BY idx""",
        job_id,
        PREPARE,
        NLP,
        READ,
    )
    return [
        {
            "phase": row["phase"],
            "first_page": row["first_page"],
            "last_page": row["last_page"],
            "status": row["status"],
            "copy": row["copy_name"] if row["status"] == RUNNING else None,
        }
        for row in rows
    ]
