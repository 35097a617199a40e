"""Housekeeping every worker copy does: retention and stalled-job recovery.

Retention (files and results older than TORI_RETENTION_DAYS, in batches) runs as a
Procrastinate periodic task, so exactly one copy does it each time. Job rows stay (small;
history and 410 `expired` answers); a stored PDF is deleted only when no job that is still
within retention (or still running) uses the same file. Stalled-job recovery gives the jobs of
dead workers (no heartbeat) back to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

import asyncpg
import procrastinate
from procrastinate.exceptions import ConnectorException

from tori_ingest.core.vocab import ErrorCode
from tori_ingest.store import files, jobs, limits, parts, retention, sessions
from tori_ingest.store.backend import Storage
from tori_ingest.store.db import DB_UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

BATCH = 500
QUEUE_ROWS_MAX_AGE_HOURS = 1  # our own table is the record; the queue's finished rows are not
# A worker beats every HEARTBEAT_S; every copy checks every RECOVERY_EVERY_S for workers silent
# for longer than `stalled_after` (SIGKILL, lost machine). Procrastinate stops a worker's
# heartbeat as soon as it starts shutting down, so a worker inside its TORI_SHUTDOWN_GRACE_S is
# silent too: the threshold is the grace plus STALLED_MARGIN_S, never less.
HEARTBEAT_S = 2.0
RATE_WINDOWS_KEPT = timedelta(days=1)  # longer than any TORI_RATE_LIMIT window
STALLED_MARGIN_S = 10.0
RECOVERY_EVERY_S = 5.0
# Orphaned rows (active, but no live queue entry) are re-queued when two checks in a row,
# RECONCILE_EVERY checks apart, see them: a row between two steps of a normal transition is
# never touched.
RECONCILE_EVERY = 6


async def purge(db: asyncpg.Pool, storage: Storage, days: int) -> dict[str, int]:
    """Purge everything due; returns counts (for logs and tests)."""
    age = timedelta(days=days)
    counts = {"jobs": 0, "files": 0, "idempotency_keys": 0, "temp_files": 0}
    counts["rate_limit_windows"] = await limits.purge(db, RATE_WINDOWS_KEPT)
    counts["sessions"] = await sessions.purge_expired(db)
    while True:
        purged, keys = await retention.purge_results(db, age, BATCH)
        if not purged:
            break
        for key in keys:  # each under its lock, re-checked: a new job may just have taken it
            if await files.remove_if_unused(db, storage, key, age):
                counts["files"] += 1
        counts["jobs"] += purged
    counts["idempotency_keys"] = await retention.purge_idempotency_keys(db, age)
    counts["temp_files"] = await storage.sweep_temp()
    return counts


async def purge_queue_rows(app: procrastinate.App) -> None:
    """Finished Procrastinate rows (failed, cancelled, aborted): 100,000 jobs must not slow it."""
    await app.job_manager.delete_old_jobs(
        nb_hours=QUEUE_ROWS_MAX_AGE_HOURS,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )


def stalled_after(grace_s: float) -> float:
    return max(grace_s, 0) + STALLED_MARGIN_S


async def recover_stalled(
    app: procrastinate.App, db: asyncpg.Pool, grace_s: float, max_deaths: int
) -> int:
    """Give the jobs of dead workers (no heartbeat) back to the queue; returns how many.

    The run they were doing gives its attempt back (a crash of the machine is not the job's
    failure), but the death is counted: a job whose copy died `max_deaths` times
    (TORI_MAX_ATTEMPTS) fails `worker_crashed` rather than kill copies for ever. If that worker
    was alive after all, `runs` fences its late writes.
    """
    stalled = await app.job_manager.get_stalled_jobs(
        task_name=jobs.TASK_NAME,  # on every queue (interactive and bulk)
        seconds_since_heartbeat=stalled_after(grace_s),
    )
    recovered = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except ConnectorException:
            continue  # another copy recovered it first
        job_id = str(job.task_kwargs["job_id"])
        deaths = await jobs.lost_with_copy(db, uuid.UUID(job_id))
        if deaths is not None and deaths >= max_deaths:
            await jobs.fail(db, uuid.UUID(job_id), ErrorCode.WORKER_CRASHED, _poison(deaths))
            log.warning("gave up on a job", extra={"event": "job.poison", "job_id": job_id})
            continue
        log.warning("recovered a stalled job", extra={"event": "job.recovered", "job_id": job_id})
        recovered += 1
    return recovered + await _recover_stalled_parts(app, db, grace_s, max_deaths)


async def _recover_stalled_parts(
    app: procrastinate.App, db: asyncpg.Pool, grace_s: float, max_deaths: int
) -> int:
    """The same for the parts of split jobs: only the part goes back to the queue."""
    stalled = await app.job_manager.get_stalled_jobs(
        task_name=parts.TASK_NAME, seconds_since_heartbeat=stalled_after(grace_s)
    )
    recovered = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except ConnectorException:
            continue
        args = job.task_kwargs
        job_id, phase, idx = uuid.UUID(str(args["job_id"])), str(args["phase"]), int(args["idx"])
        deaths = await parts.died(db, job_id, phase, idx)
        if deaths is not None and deaths >= max_deaths:
            await jobs.fail(db, job_id, ErrorCode.WORKER_CRASHED, _poison(deaths))
            continue
        log.warning(
            "recovered a stalled part", extra={"event": "part.recovered", "job_id": str(job_id)}
        )
        recovered += 1
    return recovered


def _poison(deaths: int) -> str:
    return (
        f"the copy running it died {deaths} times (TORI_MAX_ATTEMPTS): the document itself "
        "may be what kills it"
    )


class Reconciler:
    """Re-queues rows that are queued/running but have no live queue entry.

    That happens when a step between our row and Procrastinate's entry is lost (a worker
    killed between them, a `finish` after its job was already re-queued). A row must be seen
    twice, RECONCILE_EVERY checks apart, so normal transitions are never raced.
    """

    def __init__(self) -> None:
        self.seen: set[uuid.UUID] = set()

    async def check(self, db: asyncpg.Pool) -> int:
        now = set(await jobs.orphans(db))
        repaired = 0
        for job_id in now & self.seen:
            if await jobs.redefer(db, job_id):
                repaired += 1
                log.warning(
                    "re-queued a job that had lost its queue entry",
                    extra={"event": "job.requeued_orphan", "job_id": str(job_id)},
                )
        self.seen = now
        return repaired


async def recover_stalled_forever(
    app: procrastinate.App, db: asyncpg.Pool, grace_s: float, max_deaths: int
) -> None:
    reconciler = Reconciler()
    checks = 0
    while True:
        await asyncio.sleep(RECOVERY_EVERY_S)
        checks += 1
        try:
            await recover_stalled(app, db, grace_s, max_deaths)
            if checks % RECONCILE_EVERY == 0:
                await reconciler.check(db)
        except (*DB_UNAVAILABLE_ERRORS, ConnectorException) as exc:
            log.warning(
                "stalled-job check failed", extra={"event": "recovery.failed", "error": repr(exc)}
            )
