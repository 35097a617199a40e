"""Procrastinate: the queue app and the `tori.ingest` task that carries one job through the pool.

The task body is `Runner.run`: start the job row, hand the file to the pool, store the result.
Typed `JobError`s end the job at once; transient errors (database, storage) raise and let
Procrastinate retry with backoff until `TORI_MAX_ATTEMPTS`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import procrastinate
from procrastinate import JobContext, RetryStrategy
from procrastinate.exceptions import ConnectorException
from procrastinate.jobs import Job
from procrastinate.retry import RetryDecision

from tori_ingest import __version__, errors, jobs, metrics, retention
from tori_ingest.db import UNAVAILABLE_ERRORS
from tori_ingest.errors import JobError
from tori_ingest.pool import Pool
from tori_ingest.settings import Settings
from tori_ingest.storage import Storage

log = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, OSError)
RETENTION_TASK = "tori.retention"
RETENTION_CRON = "*/10 * * * *"
RETENTION_PRIORITY = 1000  # quick, and before any waiting ingest job
# A worker beats every HEARTBEAT_S; one silent for STALLED_AFTER_S is dead (SIGKILL, lost
# machine), and every copy checks for such workers' jobs every RECOVERY_EVERY_S.
HEARTBEAT_S = 2.0
STALLED_AFTER_S = 10.0
RECOVERY_EVERY_S = 5.0


class JitteredRetry(RetryStrategy):
    """Exponential backoff plus up to one second of jitter, so retries of a burst spread out."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        decision = super().get_retry_decision(exception=exception, job=job)
        if decision is None or decision.retry_at is None:
            return decision
        return RetryDecision(retry_at=decision.retry_at + timedelta(seconds=random.random()))


class Runner:
    """What the ingest task needs from the process it runs in."""

    def __init__(self, settings: Settings, db: asyncpg.Pool, storage: Storage, pool: Pool) -> None:
        self.settings, self.db, self.storage, self.pool = settings, db, storage, pool
        self._progress_tasks: set[asyncio.Task[None]] = set()
        pool.on_progress = self.on_progress

    def on_progress(self, job_id: str, done: int, total: int) -> None:
        task = asyncio.create_task(self._write_progress(uuid.UUID(job_id), done, total))
        self._progress_tasks.add(task)
        task.add_done_callback(self._progress_tasks.discard)

    async def _write_progress(self, job_id: uuid.UUID, done: int, total: int) -> None:
        try:
            await jobs.set_progress(self.db, job_id, done, total)
        except TRANSIENT_ERRORS as exc:  # progress is best effort; the outcome is not
            log.warning("progress update failed", extra={"job_id": str(job_id), "error": str(exc)})

    async def run(self, job_id: uuid.UUID, final_attempt: bool) -> None:
        row = await jobs.start(self.db, job_id)
        if row is None:
            log.info("job already ended; nothing to do", extra={"job_id": str(job_id)})
            return
        queue_wait_ms = (row["started_at"] - row["created_at"]).total_seconds() * 1000
        metrics.QUEUE_WAIT.observe(queue_wait_ms / 1000)
        began = time.perf_counter()
        path = str(self.storage.path(row["storage_key"]))
        try:
            out = await self.pool.run(str(job_id), path, row["password"])
        except JobError as exc:
            await jobs.fail(self.db, job_id, exc.code, exc.message)
            metrics.JOBS_FINISHED.labels(status="failed", error_code=exc.code).inc()
            metrics.JOB_DURATION.observe(time.perf_counter() - began)
            log.info("job failed", extra={"job_id": str(job_id), "code": exc.code})
            return
        except asyncio.CancelledError:
            await asyncio.shield(jobs.requeue(self.db, job_id))
            raise
        except TRANSIENT_ERRORS as exc:
            await self._transient(job_id, exc, final_attempt)
            raise
        except Exception as exc:
            log.exception("job crashed", extra={"job_id": str(job_id)})
            await jobs.fail(self.db, job_id, errors.INTERNAL, f"unexpected error: {exc!r}")
            return
        result = assemble(row, out, queue_wait_ms, (time.perf_counter() - began) * 1000)
        try:
            stored = await jobs.succeed(self.db, job_id, result, jobs.summarize(result))
        except TRANSIENT_ERRORS as exc:
            await self._transient(job_id, exc, final_attempt)
            raise
        if not stored:  # cancelled (or finished by another copy) while it ran
            log.info("job ended elsewhere; result discarded", extra={"job_id": str(job_id)})
            return
        metrics.JOBS_FINISHED.labels(status="succeeded", error_code="").inc()
        metrics.JOB_DURATION.observe(time.perf_counter() - began)
        metrics.PAGES.inc(out["document"]["pages"])
        log.info("job succeeded", extra={"job_id": str(job_id), "pages": out["document"]["pages"]})

    async def _transient(self, job_id: uuid.UUID, exc: BaseException, final: bool) -> None:
        log.warning("transient error", extra={"job_id": str(job_id), "error": repr(exc)})
        try:
            if final:
                await jobs.fail(self.db, job_id, errors.INTERNAL, f"gave up after retries: {exc!r}")
            else:
                await jobs.requeue(self.db, job_id)
        except TRANSIENT_ERRORS:
            pass  # the database is away: stalled-job recovery puts the row right later


def assemble(
    row: asyncpg.Record, out: dict[str, Any], queue_wait_ms: float, total_ms: float
) -> dict[str, Any]:
    """The SPEC §5 result: the pool's output plus what only the job row knows."""
    document = {
        "sha256": row["sha256"],
        "filename": row["filename"],
        "bytes": row["bytes"],
        **out["document"],
    }
    return {
        "job_id": str(row["id"]),
        "document": document,
        "pages": out["pages"],
        "entities": out["entities"],
        "keyphrases": out["keyphrases"],
        "chunks": out["chunks"],
        "stats": out["stats"],
        "warnings": out["warnings"],
        "timings_ms": {
            "queue_wait": round(queue_wait_ms, 1),
            **out["timings_ms"],
            "total": round(total_ms, 1),
        },
        "pipeline": {**out["pipeline"], "tori_ingest_version": __version__},
        "deduplicated": False,
    }


async def run_retention(context: JobContext, timestamp: int) -> None:
    """Periodic (one copy per run): purge what is older than TORI_RETENTION_DAYS."""
    runner: Runner = context.additional_context["runner"]
    counts = await retention.purge(runner.db, runner.storage, runner.settings.tori_retention_days)
    await retention.purge_queue_rows(context.app)
    log.info("retention done", extra=counts)


async def ingest(context: JobContext, job_id: str) -> None:
    runner: Runner = context.additional_context["runner"]
    max_attempts = runner.settings.tori_max_attempts
    await runner.run(uuid.UUID(job_id), final_attempt=context.job.attempts + 1 >= max_attempts)


async def recover_stalled(app: procrastinate.App, db: asyncpg.Pool) -> int:
    """Give the jobs of dead workers (no heartbeat) back to the queue; returns how many."""
    stalled = await app.job_manager.get_stalled_jobs(
        queue=jobs.QUEUE, task_name=jobs.TASK_NAME, seconds_since_heartbeat=STALLED_AFTER_S
    )
    recovered = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except ConnectorException:
            continue  # another copy recovered it first
        await jobs.requeue(db, uuid.UUID(str(job.task_kwargs["job_id"])))
        log.warning("recovered a stalled job", extra={"job_id": job.task_kwargs["job_id"]})
        recovered += 1
    return recovered


async def recover_stalled_forever(app: procrastinate.App, db: asyncpg.Pool) -> None:
    while True:
        await asyncio.sleep(RECOVERY_EVERY_S)
        try:
            await recover_stalled(app, db)
        except (*TRANSIENT_ERRORS, ConnectorException) as exc:
            log.warning("stalled-job check failed", extra={"error": repr(exc)})


def build_app(url: str, settings: Settings, *, max_connections: int) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(conninfo=url, min_size=1, max_size=max_connections)
    app = procrastinate.App(connector=connector)
    retry = JitteredRetry(
        max_attempts=max(0, settings.tori_max_attempts - 1),
        exponential_wait=2,
        retry_exceptions=[*TRANSIENT_ERRORS, asyncio.CancelledError],  # type: ignore[list-item]
    )
    app.task(name=jobs.TASK_NAME, queue=jobs.QUEUE, pass_context=True, retry=retry)(ingest)
    retention_task = app.task(
        name=RETENTION_TASK, queue=jobs.QUEUE, pass_context=True, priority=RETENTION_PRIORITY
    )(run_retention)
    app.periodic(cron=RETENTION_CRON, periodic_id="retention")(retention_task)
    return app
