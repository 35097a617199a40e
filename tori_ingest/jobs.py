"""Job rows and results in Postgres: create (atomically with the queue entry), read, transition.

Every state change is one parameterised statement guarded by the state it expects, so two
processes racing on a job (a cancel and a finish, a stalled retry and a late result) cannot
both win.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

TASK_NAME = "tori.ingest"
QUEUE = "ingest"
# Procrastinate fetches the highest priority first: interactive uploads overtake back-fills.
LANE_PRIORITY = {"interactive": 100, "bulk": 0}
TERMINAL = ("succeeded", "failed", "cancelled")

JOB_COLUMNS = """id, status, lane, created_at, started_at, finished_at, attempts, pages_done,
    pages_total, sha256, filename, bytes, storage_key, deduplicated, error_code, error_message,
    summary, procrastinate_job_id"""

# One statement: the Procrastinate job (its own defer function) and our row exist together or not
# at all. A failing insert rolls the queue entry back with it.
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
    WHERE j.sha256 = $2 AND j.status = 'succeeded'
    ORDER BY j.finished_at DESC LIMIT 1
), job AS (
    INSERT INTO tori_jobs (id, status, lane, sha256, filename, bytes, storage_key, started_at,
                           finished_at, pages_done, pages_total, deduplicated, summary)
    SELECT $1, 'succeeded', $3, $2, $4, $5, $6, now(), now(), pages_total, pages_total, true,
           summary
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
    SELECT id, lane FROM tori_jobs WHERE id = $1 AND status IN ('failed', 'cancelled') FOR UPDATE
), deferred AS (
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY(
        SELECT ROW($2::varchar, $3::varchar,
                   CASE WHEN lane = 'bulk' THEN {bulk} ELSE {interactive} END,
                   NULL::text, NULL::text, jsonb_build_object('job_id', id), NULL::timestamptz
        )::procrastinate_job_to_defer_v1 FROM target
    ))) AS queue_id
)
UPDATE tori_jobs j SET status = 'queued', error_code = NULL, error_message = NULL,
       started_at = NULL, finished_at = NULL, pages_done = 0,
       password = coalesce($4, j.password), procrastinate_job_id = deferred.queue_id
FROM deferred WHERE j.id = $1
RETURNING {columns}
""".format(
    bulk=LANE_PRIORITY["bulk"],
    interactive=LANE_PRIORITY["interactive"],
    columns=", ".join(f"j.{c.strip()}" for c in JOB_COLUMNS.split(",")),
)


@dataclass(frozen=True)
class NewJob:
    sha256: str
    filename: str
    bytes: int
    storage_key: str
    lane: str = "interactive"
    password: str | None = None


async def create_deduplicated(conn: asyncpg.Connection, job: NewJob) -> asyncpg.Record | None:
    """A job answered from an earlier result of the same PDF; None if there is none."""
    return await conn.fetchrow(
        _CREATE_DEDUPLICATED,
        uuid.uuid4(),
        job.sha256,
        job.lane,
        job.filename,
        job.bytes,
        job.storage_key,
    )


async def create(conn: asyncpg.Connection, job: NewJob) -> asyncpg.Record:
    return await conn.fetchrow(
        _CREATE,
        uuid.uuid4(),
        QUEUE,
        TASK_NAME,
        LANE_PRIORITY[job.lane],
        job.lane,
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
    return await db.fetchrow(_RETRY, job_id, QUEUE, TASK_NAME, password)


async def cancel(db: asyncpg.Pool, job_id: uuid.UUID) -> asyncpg.Record | None:
    """queued/running → cancelled, and the queue entry cancelled (a running one aborted).

    None when the job had already ended. A worker that finishes a cancelled job finds its
    row no longer `running` and stores nothing.
    """
    async with db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"""UPDATE tori_jobs SET status = 'cancelled', finished_at = now(), password = NULL,
                       error_code = 'cancelled', error_message = 'cancelled by request'
                WHERE id = $1 AND status IN ('queued', 'running')
                RETURNING {JOB_COLUMNS}""",
            job_id,
        )
        if row is not None and row["procrastinate_job_id"] is not None:
            await conn.execute(
                "SELECT procrastinate_cancel_job_v1($1, true, false)", row["procrastinate_job_id"]
            )
    return row


async def get(db: asyncpg.Pool | asyncpg.Connection, job_id: uuid.UUID) -> asyncpg.Record | None:
    return await db.fetchrow(f"SELECT {JOB_COLUMNS} FROM tori_jobs WHERE id = $1", job_id)


async def list_page(
    db: asyncpg.Pool, *, status: str | None, lane: str | None, after: uuid.UUID | None, limit: int
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
        f"""UPDATE tori_jobs SET status = 'running', attempts = attempts + 1,
                   started_at = now(), pages_done = 0, error_code = NULL, error_message = NULL
            WHERE id = $1 AND status IN ('queued', 'running')
            RETURNING {JOB_COLUMNS}, password""",
        job_id,
    )


async def set_progress(db: asyncpg.Pool, job_id: uuid.UUID, done: int, total: int) -> None:
    await db.execute(
        """UPDATE tori_jobs SET pages_done = $2, pages_total = $3
           WHERE id = $1 AND status = 'running' AND pages_done <= $2""",
        job_id,
        done,
        total,
    )


async def succeed(
    db: asyncpg.Pool, job_id: uuid.UUID, result: dict[str, Any], summary: dict[str, Any]
) -> bool:
    """Store the result and end the job, once: a second finisher changes nothing."""
    pages = result["document"]["pages"]
    async with db.acquire() as conn, conn.transaction():
        ended = await conn.fetchval(
            """UPDATE tori_jobs SET status = 'succeeded', finished_at = now(), password = NULL,
                      pages_done = $2, pages_total = $2, summary = $3::jsonb
               WHERE id = $1 AND status = 'running' RETURNING true""",
            job_id,
            pages,
            orjson.dumps(summary).decode(),
        )
        if not ended:
            return False
        await conn.execute(
            "INSERT INTO tori_results (job_id, result) VALUES ($1, $2::jsonb)",
            job_id,
            orjson.dumps(result).decode(),
        )
    return True


async def fail(db: asyncpg.Pool, job_id: uuid.UUID, code: str, message: str) -> bool:
    return bool(
        await db.fetchval(
            """UPDATE tori_jobs SET status = 'failed', finished_at = now(), password = NULL,
                      error_code = $2, error_message = $3
               WHERE id = $1 AND status IN ('queued', 'running') RETURNING true""",
            job_id,
            code,
            message[:1000],
        )
    )


async def requeue(db: asyncpg.Pool, job_id: uuid.UUID) -> None:
    """running → queued, when the attempt ends without an outcome and the queue will retry."""
    await db.execute(
        """UPDATE tori_jobs SET status = 'queued', pages_done = 0
           WHERE id = $1 AND status = 'running'""",
        job_id,
    )


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


async def counts(db: asyncpg.Pool) -> dict[str, Any]:
    """Jobs by state and lane, and the queue's own backlog (for `status` and metrics)."""
    by_status: dict[str, int] = {}
    by_lane: dict[str, dict[str, int]] = {}
    for (status, lane), n in (await state_counts(db)).items():
        by_status[status] = by_status.get(status, 0) + n
        by_lane.setdefault(lane, {})[status] = n
    return {"jobs": by_status, "lanes": by_lane}


async def state_counts(db: asyncpg.Pool) -> dict[tuple[str, str], int]:
    """Number of jobs per (status, lane)."""
    rows = await db.fetch("SELECT status, lane, count(*) AS n FROM tori_jobs GROUP BY 1, 2")
    return {(r["status"], r["lane"]): r["n"] for r in rows}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def links(job_id: uuid.UUID | str) -> dict[str, str]:
    return {
        "self": f"/jobs/{job_id}",
        "result": f"/jobs/{job_id}/result",
        "ws": f"/ws/jobs/{job_id}",
    }


def view(row: asyncpg.Record) -> dict[str, Any]:
    """The public JSON of a job (GET /jobs/{id})."""
    error = (
        {"code": row["error_code"], "message": row["error_message"]} if row["error_code"] else None
    )
    summary = row["summary"]
    return {
        "job_id": str(row["id"]),
        "status": row["status"],
        "lane": row["lane"],
        "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "attempts": row["attempts"],
        "pages_done": row["pages_done"],
        "pages_total": row["pages_total"],
        "document": {"sha256": row["sha256"], "filename": row["filename"], "bytes": row["bytes"]},
        "deduplicated": row["deduplicated"],
        "error": error,
        "result": orjson.loads(summary) if summary is not None else None,
        "links": links(row["id"]),
    }


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """The small part of a result kept on the job row."""
    return {
        "pages": result["document"]["pages"],
        "title": result["document"].get("title"),
        **result["stats"],
        "entities": len(result["entities"]),
        "chunks": len(result["chunks"]),
        "warnings": len(result["warnings"]),
    }
