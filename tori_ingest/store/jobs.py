"""Job rows and results in Postgres: create (atomically with the queue entry), read, transition.

Every state change is one parameterised statement guarded by the state it expects, so two
processes racing on a job (a cancel and a finish, a stalled retry and a late result) cannot
both win. Statuses, lanes and codes are passed as parameters from the enums in `core.vocab`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import orjson

from tori_ingest.core.models import (
    Counts,
    DocumentRef,
    ErrorInfo,
    JobView,
    Links,
    Result,
    Summary,
)
from tori_ingest.core.vocab import ACTIVE, ErrorCode, Lane, Status

TASK_NAME = "tori.ingest"
QUEUE = "ingest"
ENDED_RETRYABLE = [Status.FAILED, Status.CANCELLED]
MAX_ERROR_MESSAGE = 1000

JOB_COLUMNS = """id, status, lane, created_at, started_at, finished_at, attempts, pages_done,
    pages_total, sha256, filename, bytes, storage_key, deduplicated, error_code, error_message,
    summary, procrastinate_job_id"""

# One statement: the Procrastinate job (its own defer function, checked by test_migrate) and
# our row exist together or not at all. A failing insert rolls the queue entry back with it.
_CREATE = f"""
WITH deferred AS (
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(
        $2::varchar, $3::varchar, $4::integer, NULL::text, NULL::text,
        jsonb_build_object('job_id', $1::uuid), NULL::timestamptz
    )::procrastinate_job_to_defer_v1])) AS queue_id
)
INSERT INTO tori_jobs (id, lane, sha256, filename, bytes, storage_key, password,
                       procrastinate_job_id)
SELECT $1, $5, $6, $7, $8, $9, $10, queue_id FROM deferred
RETURNING {JOB_COLUMNS}
"""

# Dedup: a new job that is born succeeded, sharing the result of an earlier job of the same
# PDF (its own job_id and "deduplicated": true written into the copy).
_CREATE_DEDUPLICATED = f"""
WITH source AS (
    SELECT j.id, j.pages_total, j.summary, r.result FROM tori_jobs j
    JOIN tori_results r ON r.job_id = j.id
    WHERE j.sha256 = $2 AND j.status = $7
    ORDER BY j.finished_at DESC LIMIT 1
), job AS (
    INSERT INTO tori_jobs (id, status, lane, sha256, filename, bytes, storage_key, started_at,
                           finished_at, pages_done, pages_total, deduplicated, summary)
    SELECT $1, $7, $3, $2, $4, $5, $6, now(), now(), pages_total, pages_total, true, summary
    FROM source
    RETURNING {JOB_COLUMNS}
), result AS (
    INSERT INTO tori_results (job_id, result)
    SELECT $1, jsonb_set(jsonb_set(result, '{{job_id}}', to_jsonb($1::text)),
                         '{{deduplicated}}', 'true'::jsonb)
    FROM source
)
SELECT * FROM job
"""

# Re-queue an ended job: a new queue entry only if the row really is failed/cancelled (an empty
# array defers nothing), and the row points at it, in one statement.
_RETRY = """
WITH target AS (
    SELECT id, lane FROM tori_jobs WHERE id = $1 AND status = ANY($5::text[]) FOR UPDATE
), deferred AS (
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY(
        SELECT ROW($2::varchar, $3::varchar,
                   ($6::jsonb ->> lane)::integer,
                   NULL::text, NULL::text, jsonb_build_object('job_id', id), NULL::timestamptz
        )::procrastinate_job_to_defer_v1 FROM target
    ))) AS queue_id
)
UPDATE tori_jobs j SET status = $7, error_code = NULL, error_message = NULL,
       started_at = NULL, finished_at = NULL, pages_done = 0,
       password = coalesce($4, j.password), procrastinate_job_id = deferred.queue_id
FROM deferred WHERE j.id = $1
RETURNING {columns}
""".format(columns=", ".join(f"j.{c.strip()}" for c in JOB_COLUMNS.split(",")))


@dataclass(frozen=True)
class NewJob:
    sha256: str
    filename: str
    bytes: int
    storage_key: str
    lane: Lane = Lane.INTERACTIVE
    password: str | None = None


def _active() -> list[str]:
    return [str(s) for s in ACTIVE]


async def create_deduplicated(conn: asyncpg.Connection, job: NewJob) -> asyncpg.Record | None:
    """A job answered from an earlier result of the same PDF; None if there is none."""
    return await conn.fetchrow(
        _CREATE_DEDUPLICATED,
        uuid.uuid4(),
        job.sha256,
        Lane(job.lane),
        job.filename,
        job.bytes,
        job.storage_key,
        Status.SUCCEEDED,
    )


async def create(conn: asyncpg.Connection, job: NewJob) -> asyncpg.Record:
    lane = Lane(job.lane)
    return await conn.fetchrow(
        _CREATE,
        uuid.uuid4(),
        QUEUE,
        TASK_NAME,
        lane.priority,
        lane,
        job.sha256,
        job.filename,
        job.bytes,
        job.storage_key,
        job.password,
    )


async def retry(
    db: asyncpg.Pool, job_id: uuid.UUID, password: str | None = None
) -> asyncpg.Record | None:
    """failed/cancelled → queued with a new queue entry; None if the job is in another state."""
    priorities = {str(lane): lane.priority for lane in Lane}
    return await db.fetchrow(
        _RETRY,
        job_id,
        QUEUE,
        TASK_NAME,
        password,
        [str(s) for s in ENDED_RETRYABLE],
        orjson.dumps(priorities).decode(),
        Status.QUEUED,
    )


async def cancel(db: asyncpg.Pool, job_id: uuid.UUID) -> asyncpg.Record | None:
    """queued/running → cancelled, and the queue entry cancelled (a running one aborted).

    None when the job had already ended. A worker that finishes a cancelled job finds its
    row no longer `running` and stores nothing.
    """
    async with db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"""UPDATE tori_jobs SET status = $2, finished_at = now(), password = NULL,
                       error_code = $3, error_message = 'cancelled by request'
                WHERE id = $1 AND status = ANY($4::text[])
                RETURNING {JOB_COLUMNS}""",
            job_id,
            Status.CANCELLED,
            ErrorCode.CANCELLED,
            _active(),
        )
        if row is not None and row["procrastinate_job_id"] is not None:
            await conn.execute(
                "SELECT procrastinate_cancel_job_v1($1, true, false)", row["procrastinate_job_id"]
            )
    return row


async def get(db: asyncpg.Pool | asyncpg.Connection, job_id: uuid.UUID) -> asyncpg.Record | None:
    return await db.fetchrow(f"SELECT {JOB_COLUMNS} FROM tori_jobs WHERE id = $1", job_id)


async def get_many(
    db: asyncpg.Pool | asyncpg.Connection, ids: Sequence[uuid.UUID]
) -> list[asyncpg.Record]:
    """The rows of `ids`, in that order (missing ones left out)."""
    rows = await db.fetch(f"SELECT {JOB_COLUMNS} FROM tori_jobs WHERE id = ANY($1::uuid[])", ids)
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


async def list_page(
    db: asyncpg.Pool,
    *,
    status: Status | None,
    lane: Lane | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Newest first; `after` is the last id of the previous page (keyset pagination)."""
    return await db.fetch(
        f"""SELECT {JOB_COLUMNS} FROM tori_jobs
            WHERE ($1::text IS NULL OR status = $1)
              AND ($4::text IS NULL OR lane = $4)
              AND ($2::uuid IS NULL OR (created_at, id) <
                   (SELECT created_at, id FROM tori_jobs WHERE id = $2))
            ORDER BY created_at DESC, id DESC LIMIT $3""",
        status,
        after,
        limit,
        lane,
    )


async def start(db: asyncpg.Pool, job_id: uuid.UUID) -> asyncpg.Record | None:
    """queued/running → running, one more attempt. None when the job must not run (ended)."""
    return await db.fetchrow(
        f"""UPDATE tori_jobs SET status = $2, attempts = attempts + 1,
                   started_at = now(), pages_done = 0, error_code = NULL, error_message = NULL
            WHERE id = $1 AND status = ANY($3::text[])
            RETURNING {JOB_COLUMNS}, password""",
        job_id,
        Status.RUNNING,
        _active(),
    )


async def set_progress(db: asyncpg.Pool, job_id: uuid.UUID, done: int, total: int) -> None:
    await db.execute(
        """UPDATE tori_jobs SET pages_done = $2, pages_total = $3
           WHERE id = $1 AND status = $4 AND pages_done <= $2""",
        job_id,
        done,
        total,
        Status.RUNNING,
    )


async def succeed(db: asyncpg.Pool, job_id: uuid.UUID, result: Result) -> bool:
    """Store the result and end the job, once: a second finisher changes nothing."""
    pages = result.document.pages
    async with db.acquire() as conn, conn.transaction():
        ended = await conn.fetchval(
            """UPDATE tori_jobs SET status = $4, finished_at = now(), password = NULL,
                      pages_done = $2, pages_total = $2, summary = $3::jsonb
               WHERE id = $1 AND status = $5 RETURNING true""",
            job_id,
            pages,
            result.summary().model_dump_json(),
            Status.SUCCEEDED,
            Status.RUNNING,
        )
        if not ended:
            return False
        await conn.execute(
            "INSERT INTO tori_results (job_id, result) VALUES ($1, $2::jsonb)",
            job_id,
            result.model_dump_json(),
        )
    return True


async def fail(db: asyncpg.Pool, job_id: uuid.UUID, code: ErrorCode, message: str) -> bool:
    return bool(
        await db.fetchval(
            """UPDATE tori_jobs SET status = $4, finished_at = now(), password = NULL,
                      error_code = $2, error_message = $3
               WHERE id = $1 AND status = ANY($5::text[]) RETURNING true""",
            job_id,
            ErrorCode(code),
            message[:MAX_ERROR_MESSAGE],
            Status.FAILED,
            _active(),
        )
    )


async def requeue(db: asyncpg.Pool, job_id: uuid.UUID) -> None:
    """running → queued, when the attempt ends without an outcome and the queue will retry."""
    await db.execute(
        "UPDATE tori_jobs SET status = $2, pages_done = 0 WHERE id = $1 AND status = $3",
        job_id,
        Status.QUEUED,
        Status.RUNNING,
    )


async def is_stored(db: asyncpg.Pool, storage_key: str) -> bool:
    """Does any job use this stored file (before deleting it)?"""
    found = await db.fetchval("SELECT 1 FROM tori_jobs WHERE storage_key = $1 LIMIT 1", storage_key)
    return bool(found)


async def result_json(db: asyncpg.Pool, job_id: uuid.UUID) -> str | None:
    """The stored result as JSON text, passed through without parsing it in Python."""
    return await db.fetchval("SELECT result::text FROM tori_results WHERE job_id = $1", job_id)


async def result_text(db: asyncpg.Pool, job_id: uuid.UUID) -> str | None:
    """Cleaned text of all pages, pages separated by form feeds (like pdftotext)."""
    return await db.fetchval(
        """SELECT coalesce(string_agg(p.page ->> 'text', E'\\f' ORDER BY p.n), '')
           FROM tori_results r,
                jsonb_array_elements(r.result -> 'pages') WITH ORDINALITY AS p(page, n)
           WHERE r.job_id = $1""",
        job_id,
    )


async def state_counts(db: asyncpg.Pool) -> dict[tuple[Status, Lane], int]:
    """Number of jobs per (status, lane)."""
    rows = await db.fetch("SELECT status, lane, count(*) AS n FROM tori_jobs GROUP BY 1, 2")
    return {(Status(r["status"]), Lane(r["lane"])): r["n"] for r in rows}


async def counts(db: asyncpg.Pool) -> Counts:
    """Jobs by state and by lane (for `status`)."""
    by_status: dict[Status, int] = {}
    by_lane: dict[Lane, dict[Status, int]] = {}
    for (status, lane), n in (await state_counts(db)).items():
        by_status[status] = by_status.get(status, 0) + n
        by_lane.setdefault(lane, {})[status] = n
    return Counts(jobs=by_status, lanes=by_lane)


def view(row: asyncpg.Record) -> JobView:
    """The public state of a job (GET /jobs/{id})."""
    error = (
        ErrorInfo(code=row["error_code"], message=row["error_message"] or "")
        if row["error_code"]
        else None
    )
    summary = row["summary"]
    return JobView(
        job_id=str(row["id"]),
        status=row["status"],
        lane=row["lane"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        attempts=row["attempts"],
        pages_done=row["pages_done"],
        pages_total=row["pages_total"],
        document=DocumentRef(sha256=row["sha256"], filename=row["filename"], bytes=row["bytes"]),
        deduplicated=row["deduplicated"],
        error=error,
        result=Summary.model_validate_json(summary) if summary is not None else None,
        links=Links.of(row["id"]),
    )
