"""One ingest job, run by the worker: start the row, hand the file to the pool, store the result.

Typed `JobError`s end the job at once; transient errors (database, storage) raise and let
Procrastinate retry with backoff until `TORI_MAX_ATTEMPTS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

import asyncpg

from tori_ingest import __version__
from tori_ingest.core import metrics
from tori_ingest.core.errors import JobError, StorageUnavailable, Unavailable
from tori_ingest.core.logs import bound_job
from tori_ingest.core.models import (
    Document,
    Processed,
    Result,
    ResultPipeline,
    Timings,
    serialise,
)
from tori_ingest.core.vocab import ErrorCode, Lane, Stage, Status
from tori_ingest.store import jobs, parts
from tori_ingest.worker.context import TRANSIENT_ERRORS, WorkerContext
from tori_ingest.worker.identity import copy_name
from tori_ingest.worker.part_run import PartRunner

log = logging.getLogger(__name__)


class Runner:
    def __init__(self, ctx: WorkerContext) -> None:
        self.settings, self.db, self.storage, self.pool = (
            ctx.settings,
            ctx.db,
            ctx.storage,
            ctx.pool,
        )
        self._progress_tasks: set[asyncio.Task[None]] = set()
        self._runs: dict[str, int] = {}  # job id → the run this process is doing
        ctx.pool.on_progress = self.on_progress
        self.parts = PartRunner(self)

    @property
    def running_jobs(self) -> list[uuid.UUID]:
        """The jobs this process is running now (its copy's report on the dashboard)."""
        return [uuid.UUID(job_id) for job_id in self._runs]

    def on_progress(self, job_id: str, done: int, total: int) -> None:
        run = self._runs.get(job_id)
        if run is None:
            return
        task = asyncio.create_task(self._write_progress(uuid.UUID(job_id), run, done, total))
        self._progress_tasks.add(task)
        task.add_done_callback(self._progress_tasks.discard)

    async def _write_progress(self, job_id: uuid.UUID, run: int, done: int, total: int) -> None:
        try:
            await jobs.set_progress(self.db, job_id, run, done, total)
        except TRANSIENT_ERRORS as exc:  # progress is best effort; the outcome is not
            log.warning(
                "progress update failed",
                extra={"event": "job.progress_failed", "job_id": str(job_id), "error": str(exc)},
            )

    async def run(self, job_id: uuid.UUID) -> None:
        with bound_job(job_id):
            row = await jobs.start(self.db, job_id, copy_name())
            if row is None:
                log.info("job already ended; nothing to do", extra={"event": "job.skipped"})
                return
            self._runs[str(job_id)] = row["runs"]
            try:
                await self._run(row)
            finally:
                self._runs.pop(str(job_id), None)

    async def _run(self, row: asyncpg.Record) -> None:
        """One run. Every write is fenced by `runs`; returning means the queue is done with
        it, raising a transient error asks Procrastinate to run it again later."""
        job_id, run, attempt = row["id"], row["runs"], row["attempts"]
        max_attempts = self.settings.tori_max_attempts
        if attempt > max_attempts:  # the last transient failure could not be recorded
            await self.fail(row, ErrorCode.INTERNAL, "gave up after TORI_MAX_ATTEMPTS attempts")
            return
        queue_wait_ms = (row["started_at"] - row["created_at"]).total_seconds() * 1000
        metrics.QUEUE_WAIT.observe(queue_wait_ms / 1000)
        began = time.perf_counter()
        try:
            async with self.storage.local_file(row["storage_key"]) as path:
                out = await self._process(row, str(path))
            if isinstance(out, list):  # a long PDF: its parts' page ranges
                await self.parts.split(row, out)
                return  # the last part to end stores the result
            await self.succeed(row, out, queue_wait_ms, (time.perf_counter() - began) * 1000)
        except JobError as exc:
            _count_stage_cpu(exc.cpu_ms)
            await self.fail(row, exc.code, exc.message, began)
            return
        except asyncio.CancelledError:  # shutdown past the grace, or a cancel by the user
            await asyncio.shield(jobs.requeue(self.db, job_id, run, refund=True))
            raise
        except StorageUnavailable as exc:  # the store's outage, not the job's: no attempt used
            log.warning("store unavailable", extra={"event": "job.storage_down", "error": str(exc)})
            with contextlib.suppress(*TRANSIENT_ERRORS):
                await jobs.requeue(self.db, job_id, run, refund=True)
            raise
        except (*TRANSIENT_ERRORS, OSError) as exc:
            if await self._transient(row, exc, final=attempt >= max_attempts):
                raise
            return
        except Exception as exc:
            log.exception("job crashed", extra={"event": "job.crashed"})
            message = f"unexpected error ({type(exc).__name__}); see the worker log"
            await self.fail(row, ErrorCode.INTERNAL, message, began)
            return

    async def _process(self, row: asyncpg.Record, path: str) -> Processed | list[tuple[int, int]]:
        """The pool's work on a job, or the read parts of a long PDF (TORI_SPLIT_PAGES).

        Splitting is for processes that would idle: when other jobs of its lane (or a higher
        one) wait, every process has work already and parts would only add their overhead
        (`bench` on the mixed corpus: 31 pages/s split against 38 whole), so it runs whole.
        """
        lane = Lane(row["lane"])
        args = (str(row["id"]), path, row["password"], row["ocr"], lane)
        out = await self.pool.run(*args, self.settings.tori_split_pages)
        if isinstance(out, list) and await parts.others_waiting(self.db, lane, row["id"]):
            log.info(
                "long job run whole: other jobs wait",
                extra={"event": "job.not_split", "pages": out[-1][1]},
            )
            out = await self.pool.run(*args, 0)
        return out

    async def succeed(
        self, row: asyncpg.Record, out: Processed, queue_wait_ms: float, total_ms: float
    ) -> None:
        """Store the result of the pool's output (once: a run that no longer owns the job
        stores nothing)."""
        cpu = time.thread_time()
        result = assemble(row, out, queue_wait_ms, total_ms)
        out.cpu_ms[Stage.ASSEMBLE] = out.cpu_ms.get(Stage.ASSEMBLE, 0.0) + _ms_since(cpu)
        result.timings_ms.cpu = dict(out.cpu_ms)
        cpu = time.thread_time()
        serialised = serialise(result)
        out.cpu_ms[Stage.STORE] = _ms_since(cpu)
        if not await jobs.succeed(self.db, row["id"], row["runs"], serialised):
            # cancelled, or a newer run owns it
            log.info("job ended elsewhere; result discarded", extra={"event": "job.discarded"})
            return
        metrics.JOBS_FINISHED.labels(status=Status.SUCCEEDED, error_code="").inc()
        metrics.JOB_DURATION.observe(total_ms / 1000)
        metrics.PAGES.inc(out.document.pages)
        _count_stage_cpu(out.cpu_ms)
        log.info("job succeeded", extra={"event": "job.succeeded", "pages": out.document.pages})

    async def fail(
        self, row: asyncpg.Record, code: ErrorCode, message: str, began: float | None = None
    ) -> None:
        if await jobs.fail(self.db, row["id"], code, message, run=row["runs"]):
            metrics.JOBS_FINISHED.labels(status=Status.FAILED, error_code=code).inc()
            if began is not None:
                metrics.JOB_DURATION.observe(time.perf_counter() - began)
            log.info("job failed", extra={"event": "job.failed", "code": code})

    async def _transient(self, row: asyncpg.Record, exc: BaseException, final: bool) -> bool:
        """Record a transient failure; True when the queue should run the job again."""
        log.warning("transient error", extra={"event": "job.transient_error", "error": repr(exc)})
        what = exc.dependency if isinstance(exc, Unavailable) else "database or storage"
        try:
            if final:
                message = f"gave up after TORI_MAX_ATTEMPTS attempts: the {what} was unavailable"
                await self.fail(row, ErrorCode.INTERNAL, message)
                return False
            await jobs.requeue(self.db, row["id"], row["runs"], refund=False)
        except TRANSIENT_ERRORS:
            pass  # the database is away: the retry (or the reconciler) puts the row right
        return True


def _count_stage_cpu(cpu_ms: dict[str, float]) -> None:
    for stage, ms in cpu_ms.items():
        metrics.STAGE_CPU.labels(stage=stage).inc(ms / 1000)


def _ms_since(thread_cpu: float) -> float:
    return round((time.thread_time() - thread_cpu) * 1000, 2)


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
        blocks=out.blocks,
        chunks=out.chunks,
        stats=out.stats,
        warnings=[w.replace("\x00", "") for w in out.warnings],  # jsonb cannot hold NUL
        timings_ms=Timings(
            queue_wait=round(queue_wait_ms, 1), **out.timings_ms, total=round(total_ms, 1)
        ),
        pipeline=ResultPipeline(**dict(out.pipeline), tori_ingest_version=__version__),
        deduplicated=False,
    )
