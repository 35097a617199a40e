"""A long document in parts (TORI_SPLIT_PAGES): the split, one part's run, and the merges.

A job with more pages than TORI_SPLIT_PAGES is not run by one pool process: its run queues
read parts (page ranges), each a queue entry of its own in the job's lane, so any pool
process of any copy can take one. The read part that ends last prepares the document
(`pipeline.process.prepare`: what needs every page at once) and queues its NLP parts; the NLP
part that ends last merges the result and stores it as an unsplit run would (`Runner.succeed`).
Every write is fenced by the job's run (`store/parts`), so a late part of an older run, or of
a cancelled or failed job, changes nothing. A part's failure for the document's own reason
(`JobError`: corrupt, timeout) fails the job with that code; a transient error, a shutdown, a
dead copy or a crashed pool process puts only that part back in the queue. Deaths are counted
per part: at TORI_MAX_ATTEMPTS of them the part is taken to be what kills its process, and the
job fails `worker_crashed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from tori_ingest.core.errors import JobError
from tori_ingest.core.logs import bound_job
from tori_ingest.core.vocab import ErrorCode, Lane
from tori_ingest.pipeline import process, split
from tori_ingest.store import parts
from tori_ingest.worker.context import TRANSIENT_ERRORS, RunAgain
from tori_ingest.worker.identity import copy_name

if TYPE_CHECKING:
    from tori_ingest.worker.job_run import Runner

log = logging.getLogger(__name__)

SHARED = Lane.BULK  # the pool's lane for part work (see `PartRunner._run`)


def _dump(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _load(blob: bytes) -> Any:
    # Written by this service's workers into its own database, read only by them.
    return pickle.loads(blob)


class _Crashed(Exception):
    """The pool process running a part's own pages died (not its prepare or finish)."""

    def __init__(self, error: JobError) -> None:
        super().__init__(error.message)
        self.error = error


def _spent(phase: process.Phase) -> process.Phase:
    """A phase's times without its output (the merge only adds them up)."""
    return process.Phase(None, phase.cpu_ms, phase.wall_ms)


class PartRunner:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.settings, self.db, self.pool = runner.settings, runner.db, runner.pool

    async def split(self, row: asyncpg.Record, ranges: list[tuple[int, int]]) -> None:
        """Queue the read parts of a long PDF (their page ranges came from the pool)."""
        planned = [parts.Planned(first, last) for first, last in ranges]
        if await parts.plan(self.db, row["id"], row["runs"], parts.READ, planned):
            log.info(
                "job split into parts",
                extra={"event": "job.split", "pages": ranges[-1][1], "parts": len(ranges)},
            )

    async def run(self, job_id: uuid.UUID, phase: str, idx: int, run: int) -> None:
        with bound_job(job_id):
            started = await parts.start(self.db, job_id, phase, idx, run, copy_name())
            if started is None:
                log.info("part no longer wanted", extra={"event": "part.skipped", "phase": phase})
                return
            part, job = started
            try:
                await self._run(job, phase, idx, part)
            except _Crashed as exc:
                await self._crashed(job, phase, idx, exc.error)
            except JobError as exc:
                await self.runner.fail(job, exc.code, exc.message)
            except asyncio.CancelledError:  # shutdown past the grace, or the job's cancel
                await asyncio.shield(parts.requeue(self.db, job_id, phase, idx))
                raise
            except (*TRANSIENT_ERRORS, OSError):
                with contextlib.suppress(*TRANSIENT_ERRORS):
                    await parts.requeue(self.db, job_id, phase, idx)
                raise  # the queue runs the part again, with backoff
            except Exception as exc:
                log.exception("part crashed", extra={"event": "part.crashed"})
                message = f"unexpected error ({type(exc).__name__}); see the worker log"
                await self.runner.fail(job, ErrorCode.INTERNAL, message)

    async def _crashed(self, job: asyncpg.Record, phase: str, idx: int, error: JobError) -> None:
        """Only this part runs again (with backoff), until it has killed its process
        TORI_MAX_ATTEMPTS times."""
        deaths = await parts.died(self.db, job["id"], phase, idx)
        if deaths is None:
            return  # the job ended meanwhile (cancelled, failed by another part)
        limit = self.settings.tori_max_attempts
        log.warning(
            "part's process died",
            extra={"event": "part.crashed", "phase": phase, "idx": idx, "deaths": deaths},
        )
        if deaths >= limit:
            await self.runner.fail(
                job, error.code, f"{error.message}; it died {deaths} times (TORI_MAX_ATTEMPTS)"
            )
            return
        raise RunAgain(error.message)

    async def _run(self, job: asyncpg.Record, phase: str, idx: int, part: asyncpg.Record) -> None:
        # Parts share the processes bulk work may use, whatever the job's lane: the pool's
        # spare process stays free for uploads (and no more parts run than there are cores).
        lane, run = SHARED, job["runs"]
        first, last = part["first_page"], part["last_page"]
        try:
            if phase == parts.READ:
                async with self.runner.storage.local_file(job["storage_key"]) as path:
                    args = (str(path), job["password"], self.pool.max_pages, job["ocr"])
                    done = await self.pool.call(process.read_part, (*args, first, last), lane)
            else:
                texts, language = _load(part["input"])
                done = await self.pool.call(process.annotate_part, (texts, language, first), lane)
        except JobError as exc:  # the job fails with the part's code, saying which pages
            exc.message = f"{exc.message} (pages {first}-{last})"
            if exc.code is ErrorCode.WORKER_CRASHED:
                raise _Crashed(exc) from None
            raise
        ended = await parts.end(self.db, job["id"], phase, idx, run, _dump(done))
        log.info(
            "part done",
            extra={"event": "part.done", "phase": phase, "pages": f"{first}-{last}"}
            | {
                "cpu_ms": round(sum(done.cpu_ms.values())),
                "wall_ms": round(sum(done.wall_ms.values())),
            },
        )
        if ended and phase == parts.READ:
            await self._prepare(job, lane)
        elif ended:
            await self._finish(job, lane)

    async def _prepare(self, job: asyncpg.Record, lane: Lane) -> None:
        """Every page is read: the document-level steps, then the NLP parts."""
        reads = [_load(blob) for blob in await parts.outputs(self.db, job["id"], parts.READ)]
        prepared = await self.pool.call(process.prepare, ([r.out for r in reads],), lane)
        spent = [_spent(r) for r in reads]
        blob = _dump((prepared, spent))
        if not await parts.save(self.db, job["id"], job["runs"], parts.PREPARE, blob):
            return
        texts, language = prepared.out.texts, prepared.out.language
        planned = [
            parts.Planned(first, last, _dump((texts[first - 1 : last], language)))
            for first, last in split.nlp_ranges([len(t) for t in texts])
        ]
        await parts.plan(self.db, job["id"], job["runs"], parts.NLP, planned)

    async def _finish(self, job: asyncpg.Record, lane: Lane) -> None:
        """Every page is annotated: merge, and store the result once."""
        began = time.perf_counter()
        prepared, spent = _load((await parts.outputs(self.db, job["id"], parts.PREPARE))[0])
        counts = [_load(blob) for blob in await parts.outputs(self.db, job["id"], parts.NLP)]
        phases = [*spent, _spent(prepared), *(_spent(c) for c in counts)]
        args = (prepared.out, [c.out for c in counts], phases)
        out = await self.pool.call(process.finish, args, lane)
        queue_wait_ms = (job["started_at"] - job["created_at"]).total_seconds() * 1000
        total_ms = (datetime.now(UTC) - job["started_at"]).total_seconds() * 1000
        await self.runner.succeed(job, out, queue_wait_ms, total_ms)
        log.info(
            "split job merged",
            extra={"event": "job.merged", "merge_ms": round((time.perf_counter() - began) * 1000)},
        )
