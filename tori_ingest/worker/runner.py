"""One ingest job, run by the worker: start the row, hand the file to the pool, store the result.

Typed `JobError`s end the job at once; transient errors (database, storage) raise and let
Procrastinate retry with backoff until `TORI_MAX_ATTEMPTS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

import asyncpg

from tori_ingest import __version__
from tori_ingest.core import metrics
from tori_ingest.core.errors import JobError, Unavailable
from tori_ingest.core.logs import bound_job
from tori_ingest.core.models import Document, Processed, Result, ResultPipeline, Timings
from tori_ingest.core.settings import Settings
from tori_ingest.core.vocab import ErrorCode, Status
from tori_ingest.store import jobs
from tori_ingest.store.db import DB_UNAVAILABLE_ERRORS
from tori_ingest.store.storage import Storage
from tori_ingest.worker.pool import Pool

log = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (*DB_UNAVAILABLE_ERRORS, Unavailable)


@dataclass
class WorkerContext:
    """What the worker's tasks need from the process they run in."""

    settings: Settings
    db: asyncpg.Pool
    storage: Storage
    pool: Pool


class Runner:
    def __init__(self, ctx: WorkerContext) -> None:
        self.settings, self.db, self.storage, self.pool = (
            ctx.settings,
            ctx.db,
            ctx.storage,
            ctx.pool,
        )
        self._progress_tasks: set[asyncio.Task[None]] = set()
        ctx.pool.on_progress = self.on_progress

    def on_progress(self, job_id: str, done: int, total: int) -> None:
        task = asyncio.create_task(self._write_progress(uuid.UUID(job_id), done, total))
        self._progress_tasks.add(task)
        task.add_done_callback(self._progress_tasks.discard)

    async def _write_progress(self, job_id: uuid.UUID, done: int, total: int) -> None:
        try:
            await jobs.set_progress(self.db, job_id, done, total)
        except TRANSIENT_ERRORS as exc:  # progress is best effort; the outcome is not
            log.warning(
                "progress update failed",
                extra={"event": "job.progress_failed", "job_id": str(job_id), "error": str(exc)},
            )

    async def run(self, job_id: uuid.UUID, final_attempt: bool) -> None:
        with bound_job(job_id):
            await self._run(job_id, final_attempt)

    async def _run(self, job_id: uuid.UUID, final_attempt: bool) -> None:
        row = await jobs.start(self.db, job_id)
        if row is None:
            log.info("job already ended; nothing to do", extra={"event": "job.skipped"})
            return
        queue_wait_ms = (row["started_at"] - row["created_at"]).total_seconds() * 1000
        metrics.QUEUE_WAIT.observe(queue_wait_ms / 1000)
        began = time.perf_counter()
        path = str(self.storage.path(row["storage_key"]))
        try:
            out = await self.pool.run(str(job_id), path, row["password"])
        except JobError as exc:
            await jobs.fail(self.db, job_id, exc.code, exc.message)
            self._finished(Status.FAILED, exc.code, began)
            log.info("job failed", extra={"event": "job.failed", "code": exc.code})
            return
        except asyncio.CancelledError:
            await asyncio.shield(jobs.requeue(self.db, job_id))
            raise
        except (*TRANSIENT_ERRORS, OSError) as exc:
            await self._transient(job_id, exc, final_attempt)
            raise
        except Exception as exc:
            log.exception("job crashed", extra={"event": "job.crashed"})
            await jobs.fail(self.db, job_id, ErrorCode.INTERNAL, f"unexpected error: {exc!r}")
            return
        result = assemble(row, out, queue_wait_ms, (time.perf_counter() - began) * 1000)
        try:
            stored = await jobs.succeed(self.db, job_id, result)
        except TRANSIENT_ERRORS as exc:
            await self._transient(job_id, exc, final_attempt)
            raise
        if not stored:  # cancelled (or finished by another copy) while it ran
            log.info("job ended elsewhere; result discarded", extra={"event": "job.discarded"})
            return
        self._finished(Status.SUCCEEDED, None, began)
        metrics.PAGES.inc(out.document.pages)
        log.info("job succeeded", extra={"event": "job.succeeded", "pages": out.document.pages})

    @staticmethod
    def _finished(status: Status, code: ErrorCode | None, began: float) -> None:
        metrics.JOBS_FINISHED.labels(status=status, error_code=code or "").inc()
        metrics.JOB_DURATION.observe(time.perf_counter() - began)

    async def _transient(self, job_id: uuid.UUID, exc: BaseException, final: bool) -> None:
        log.warning("transient error", extra={"event": "job.transient_error", "error": repr(exc)})
        try:
            if final:
                message = f"gave up after retries: {exc!r}"
                await jobs.fail(self.db, job_id, ErrorCode.INTERNAL, message)
            else:
                await jobs.requeue(self.db, job_id)
        except TRANSIENT_ERRORS:
            pass  # the database is away: stalled-job recovery puts the row right later


def assemble(row: asyncpg.Record, out: Processed, queue_wait_ms: float, total_ms: float) -> Result:
    """The full result: the pool's output plus what only the job row knows."""
    return Result.model_construct(
        job_id=str(row["id"]),
        document=Document.model_construct(
            sha256=row["sha256"],
            filename=row["filename"],
            bytes=row["bytes"],
            **dict(out.document),
        ),
        pages=out.pages,
        entities=out.entities,
        keyphrases=out.keyphrases,
        chunks=out.chunks,
        stats=out.stats,
        warnings=out.warnings,
        timings_ms=Timings(
            queue_wait=round(queue_wait_ms, 1), **out.timings_ms, total=round(total_ms, 1)
        ),
        pipeline=ResultPipeline(**dict(out.pipeline), tori_ingest_version=__version__),
        deduplicated=False,
    )
