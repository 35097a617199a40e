"""Job rows and results in Postgres: create (atomically with the queue entry), read, transition.

Every state change is one parameterised statement guarded by the state it expects, so two
processes racing on a job (a cancel and a finish, a stalled retry and a late result) cannot
both win. Statuses, lanes and codes are passed as parameters from the enums in `core.vocab`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import orjson

from tori_ingest.core.models import Serialised
from tori_ingest.core.vocab import ACTIVE, ErrorCode, Lane, Status

TASK_NAME = "tori.ingest"
QUEUE = "ingest"  # interactive jobs (and the periodic tasks)
# Bulk jobs have a queue of their own, so a worker slot reserved for interactive work
# (`worker.workers`) can fetch an upload while every other slot holds a long bulk job.
BULK_QUEUE = "ingest.bulk"
ENDED_RETRYABLE = [Status.FAILED, Status.CANCELLED]
MAX_ERROR_MESSAGE = 1000

JOB_COLUMNS = """id, status, lane, created_at, started_at, finished_at, attempts, pages_done,
    pages_total, sha256, filename, bytes, storage_key, deduplicated, error_code, error_message,
    summary, procrastinate_job_id, purged_at, owner, owner_ref, erased_at"""

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
                       procrastinate_job_id, owner, owner_ref, callback_url, ocr)
SELECT $1, $5, $6, $7, $8, $9, $10, queue_id, $11, $12, $13, $14 FROM deferred
RETURNING {JOB_COLUMNS}
"""

# Dedup: a new job that is born succeeded, sharing the result of an earlier job of the same
# PDF (its own job_id, file name and "deduplicated": true written into the copy). Encrypted
# PDFs are never deduplicated: the text must not reach a caller who did not prove the password.
# Only a result made with the same OCR mode counts ($11: the job's own `ocr`, NULL: default).
# Only a result of the same owner counts ($8, see `create_deduplicated`).
_CREATE_DEDUPLICATED = f"""
WITH source AS (
    SELECT j.id, j.pages_total, j.summary, r.result FROM tori_jobs j
    JOIN tori_results r ON r.job_id = j.id
    WHERE j.sha256 = $2 AND j.status = $7 AND j.ocr IS NOT DISTINCT FROM $11
      AND j.owner IS NOT DISTINCT FROM $8
      AND NOT coalesce((r.result #>> '{{document,encrypted}}')::boolean, true)
    ORDER BY j.finished_at DESC LIMIT 1
), job AS (
    INSERT INTO tori_jobs (id, status, lane, sha256, filename, bytes, storage_key, started_at,
                           finished_at, pages_done, pages_total, deduplicated, summary,
                           owner, owner_ref, callback_url, ocr)
    SELECT $1, $7, $3, $2, $4, $5, $6, now(), now(), pages_total, pages_total, true, summary,
           $8, $9, $10, $11
    FROM source
    RETURNING {JOB_COLUMNS}
), result AS (
    INSERT INTO tori_results (job_id, result)
    SELECT $1, jsonb_set(jsonb_set(jsonb_set(result, '{{job_id}}', to_jsonb($1::text)),
                                   '{{deduplicated}}', 'true'::jsonb),
                         '{{document,filename}}', to_jsonb($4::text))
    FROM source
)
SELECT * FROM job
"""

# A new queue entry for the row of `target` (none when the target is empty), in one statement
# with the row update that points at it. $2 lane → queue and $6 lane → priority as JSON, $3 task.
_DEFER_TARGET = """
deferred AS (
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY(
        SELECT ROW(($2::jsonb ->> lane)::varchar, $3::varchar,
                   ($6::jsonb ->> lane)::integer,
                   NULL::text, NULL::text, jsonb_build_object('job_id', id), NULL::timestamptz
        )::procrastinate_job_to_defer_v1 FROM target
    ))) AS queue_id
)"""
_RETURNING_J = ", ".join(f"j.{c.strip()}" for c in JOB_COLUMNS.split(","))

# Re-queue an ended job: only if the row really is failed/cancelled.
_RETRY = f"""
WITH target AS (
    SELECT id, lane FROM tori_jobs
    WHERE id = $1 AND status = ANY($5::text[]) AND purged_at IS NULL FOR UPDATE
), {_DEFER_TARGET}
UPDATE tori_jobs j SET status = $7, error_code = NULL, error_message = NULL,
       started_at = NULL, finished_at = NULL, pages_done = 0,
       password = coalesce($4, j.password), procrastinate_job_id = deferred.queue_id
FROM deferred WHERE j.id = $1
RETURNING {_RETURNING_J}
"""

# Rows that should be in the queue but whose entry is gone or finished ($1 our active
# statuses, $2 Procrastinate's live ones). Procrastinate's table is read directly here:
# `migrate.check_procrastinate_api` checks the columns at start-up and in the tests.
_ORPHANS = """
SELECT j.id FROM tori_jobs j
LEFT JOIN procrastinate_jobs q ON q.id = j.procrastinate_job_id
WHERE j.status = ANY($1::text[]) AND (q.id IS NULL OR q.status::text <> ALL($2::text[]))
  AND NOT EXISTS (SELECT 1 FROM tori_job_parts p JOIN procrastinate_jobs pq
                  ON pq.id = p.procrastinate_job_id
                  WHERE p.job_id = j.id AND pq.status::text = ANY($2::text[]))
LIMIT $3
"""
_REDEFER = f"""
WITH target AS (
    SELECT j.id, j.lane FROM tori_jobs j
    LEFT JOIN procrastinate_jobs q ON q.id = j.procrastinate_job_id
    WHERE j.id = $1 AND j.status = ANY($4::text[])
      AND (q.id IS NULL OR q.status::text <> ALL($5::text[]))
      AND NOT EXISTS (SELECT 1 FROM tori_job_parts p JOIN procrastinate_jobs pq
                      ON pq.id = p.procrastinate_job_id
                      WHERE p.job_id = j.id AND pq.status::text = ANY($5::text[]))
    FOR UPDATE OF j
), {_DEFER_TARGET}
UPDATE tori_jobs j SET status = $7, pages_done = 0, procrastinate_job_id = deferred.queue_id
FROM deferred WHERE j.id = $1
RETURNING j.id
"""
# A run that ends while its row is `queued` was given back by stall recovery while it was in
# fact alive: the attempt it was refunded counts after all.
_UNREFUND = "attempts = attempts + (status = $7)::int"  # $7: Status.QUEUED
LIVE_QUEUE_STATES = ["todo", "doing", "aborting"]  # Procrastinate's (checked by migrate)


@dataclass(frozen=True)
class NewJob:
    sha256: str
    filename: str
    bytes: int
    storage_key: str
    lane: Lane = Lane.INTERACTIVE
    password: str | None = None
    owner: str | None = None  # the token name that created it (None: auth off)
    owner_ref: str | None = None
    callback_url: str | None = None  # webhook target, fixed at submit (sql/008_webhooks.sql)
    ocr: str | None = None  # the job's own OCR mode; None: TORI_OCR (sql/010_ocr.sql)


def _active() -> list[str]:
    return [str(s) for s in ACTIVE]


async def create_deduplicated(conn: asyncpg.Connection, job: NewJob) -> asyncpg.Record | None:
    """A job answered from an earlier result of the same PDF by the same owner; None if there
    is none.

    Never across owners: an instant "deduplicated": true would tell one tenant what another
    uploaded, and the copy of the other's result would outlive that tenant's erase. Owner NULL
    (auth off) is one owner for every job. An admin (TORI_ADMIN_TOKENS) dedups only against
    the jobs of its own token name too: it may read every job, but a copy made under its name
    would still be another tenant's data that the tenant's erase could not take back.
    """
    return await conn.fetchrow(
        _CREATE_DEDUPLICATED,
        uuid.uuid4(),
        job.sha256,
        Lane(job.lane),
        job.filename,
        job.bytes,
        job.storage_key,
        Status.SUCCEEDED,
        job.owner,
        job.owner_ref,
        job.callback_url,
        job.ocr,
    )


async def create(conn: asyncpg.Connection, job: NewJob) -> asyncpg.Record:
    lane = Lane(job.lane)
    return await conn.fetchrow(
        _CREATE,
        uuid.uuid4(),
        queue_for(lane),
        TASK_NAME,
        lane.priority,
        lane,
        job.sha256,
        job.filename,
        job.bytes,
        job.storage_key,
        job.password,
        job.owner,
        job.owner_ref,
        job.callback_url,
        job.ocr,
    )


async def retry(
    db: asyncpg.Pool, job_id: uuid.UUID, password: str | None = None
) -> asyncpg.Record | None:
    """failed/cancelled → queued with a new queue entry; None if the job is in another state."""
    return await db.fetchrow(
        _RETRY,
        job_id,
        _queues(),
        TASK_NAME,
        password,
        [str(s) for s in ENDED_RETRYABLE],
        _priorities(),
        Status.QUEUED,
    )


def queue_for(lane: Lane) -> str:
    return BULK_QUEUE if lane is Lane.BULK else QUEUE


def _queues() -> str:
    return orjson.dumps({str(lane): queue_for(lane) for lane in Lane}).decode()


def _priorities() -> str:
    return orjson.dumps({str(lane): lane.priority for lane in Lane}).decode()


async def orphans(db: asyncpg.Pool, limit: int = 1000) -> list[uuid.UUID]:
    """Queued/running rows with no live queue entry (a lost `finish`, a crash between)."""
    rows = await db.fetch(_ORPHANS, _active(), LIVE_QUEUE_STATES, limit)
    return [r["id"] for r in rows]


async def redefer(db: asyncpg.Pool, job_id: uuid.UUID) -> bool:
    """Give an orphaned row a new queue entry (if it still is one); True when it did."""
    return bool(
        await db.fetchval(
            _REDEFER,
            job_id,
            _queues(),
            TASK_NAME,
            _active(),
            LIVE_QUEUE_STATES,
            _priorities(),
            Status.QUEUED,
        )
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


async def start(db: asyncpg.Pool, job_id: uuid.UUID, copy: str) -> asyncpg.Record | None:
    """queued/running → running on `copy` (host:pid): a new run, one more attempt. None when
    the job has ended.

    The returned `runs` fences every later write of this run (see `sql/006_job_runs.sql`).
    """
    return await db.fetchrow(
        f"""UPDATE tori_jobs SET status = $2, attempts = attempts + 1, runs = runs + 1,
                   started_at = now(), pages_done = 0, error_code = NULL, error_message = NULL,
                   copy_name = $4
            WHERE id = $1 AND status = ANY($3::text[])
            RETURNING {JOB_COLUMNS}, password, runs, ocr""",
        job_id,
        Status.RUNNING,
        _active(),
        copy,
    )


async def set_progress(
    db: asyncpg.Pool, job_id: uuid.UUID, run: int, done: int, total: int
) -> None:
    await db.execute(
        """UPDATE tori_jobs SET pages_done = $2, pages_total = $3
           WHERE id = $1 AND status = $4 AND runs = $5 AND pages_done <= $2""",
        job_id,
        done,
        total,
        Status.RUNNING,
        run,
    )


async def succeed(db: asyncpg.Pool, job_id: uuid.UUID, run: int, result: Serialised) -> bool:
    """Store the result and end the job, once: only the latest run may, and only once.

    A run whose row was given back to the queue meanwhile (stall recovery while it was still
    alive) but not restarted still owns the job: its result is kept rather than redone.
    """
    # One statement (no BEGIN/COMMIT round trips): the row ends and the result is written
    # together, or neither when the run no longer owns the job.
    stored = await db.fetchval(
        f"""WITH ended AS (
                UPDATE tori_jobs SET status = $4, finished_at = now(), password = NULL,
                       pages_done = $2, pages_total = $2, summary = $3::jsonb, {_UNREFUND}
                WHERE id = $1 AND runs = $6 AND status = ANY($5::text[]) RETURNING id)
            INSERT INTO tori_results (job_id, result) SELECT id, $8::jsonb FROM ended
            RETURNING true""",
        job_id,
        result.pages,
        result.summary,
        Status.SUCCEEDED,
        _active(),
        run,
        Status.QUEUED,
        result.result,
    )
    return bool(stored)


async def fail(
    db: asyncpg.Pool, job_id: uuid.UUID, code: ErrorCode, message: str, run: int | None = None
) -> bool:
    """End the job as failed (only the run `run`, when given). NUL never reaches the row."""
    return bool(
        await db.fetchval(
            f"""UPDATE tori_jobs SET status = $4, finished_at = now(), password = NULL,
                      error_code = $2, error_message = $3, {_UNREFUND}
               WHERE id = $1 AND status = ANY($5::text[]) AND ($6::int IS NULL OR runs = $6)
               RETURNING true""",
            job_id,
            str(code),
            message.replace("\x00", "")[:MAX_ERROR_MESSAGE],
            Status.FAILED,
            _active(),
            run,
            Status.QUEUED,
        )
    )


async def lost_with_copy(db: asyncpg.Pool, job_id: uuid.UUID) -> int | None:
    """running → queued for a run whose copy died: its attempt is given back, but the death is
    counted (returned); None when the job was not running (it died before starting it)."""
    deaths: int | None = await db.fetchval(
        """UPDATE tori_jobs SET status = $2, pages_done = 0, attempts = greatest(attempts - 1, 0),
                  copy_deaths = copy_deaths + 1
           WHERE id = $1 AND status = $3
           RETURNING copy_deaths""",
        job_id,
        Status.QUEUED,
        Status.RUNNING,
    )
    return deaths


async def requeue(db: asyncpg.Pool, job_id: uuid.UUID, run: int | None, *, refund: bool) -> bool:
    """running → queued when a run ends without an outcome and the queue will run it again.

    `refund`: the run was cut short by a shutdown or a stall, not by a failure, so it does not
    use up one of TORI_MAX_ATTEMPTS. `run` None: whichever run holds it (stall recovery).
    """
    return bool(
        await db.fetchval(
            """UPDATE tori_jobs SET status = $2, pages_done = 0,
                      attempts = greatest(attempts - $5::int, 0)
               WHERE id = $1 AND status = $3 AND ($4::int IS NULL OR runs = $4)
               RETURNING true""",
            job_id,
            Status.QUEUED,
            Status.RUNNING,
            run,
            int(refund),
        )
    )
