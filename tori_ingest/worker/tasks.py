"""The Procrastinate app of a worker: the ingest task, the retention task, the retry policy."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid

import procrastinate
from procrastinate import BaseRetryStrategy, JobContext
from procrastinate.jobs import Job
from procrastinate.retry import RetryDecision

from tori_ingest.core.settings import Settings
from tori_ingest.store import deliveries, jobs, parts
from tori_ingest.worker import maintenance
from tori_ingest.worker.connector import connector
from tori_ingest.worker.context import TRANSIENT_ERRORS, RunAgain
from tori_ingest.worker.job_run import Runner

log = logging.getLogger(__name__)

RETENTION_TASK = "tori.retention"
RETENTION_CRON = "*/10 * * * *"
RETENTION_PRIORITY = 1000  # quick, and before any waiting ingest job


MAX_BACKOFF_S = 60.0


class IngestRetry(BaseRetryStrategy):
    """When Procrastinate runs an ingest job (or part) again: a run cut short by a shutdown at
    once, a transient error or a part's crashed process after exponential backoff (capped, with
    jitter so a burst spreads out).

    No limit here: the job row counts attempts (refunding shutdowns and stalls) and the runner
    ends the job itself at TORI_MAX_ATTEMPTS, so a database outage of any length loses nothing.
    """

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, asyncio.CancelledError):
            return RetryDecision(retry_in={"seconds": 0})
        if not isinstance(exception, (*TRANSIENT_ERRORS, OSError, RunAgain)):
            return None
        wait = min(2.0 ** (job.attempts + 1), MAX_BACKOFF_S) + random.random()
        return RetryDecision(retry_in={"seconds": wait})


async def ingest(context: JobContext, job_id: str) -> None:
    runner: Runner = context.additional_context["runner"]
    await runner.run(uuid.UUID(job_id))


async def part(context: JobContext, job_id: str, phase: str, idx: int, run: int) -> None:
    """One page-range part of a split job (`worker/part_run`)."""
    runner: Runner = context.additional_context["runner"]
    await runner.parts.run(uuid.UUID(job_id), phase, idx, run)


async def run_retention(context: JobContext, timestamp: int) -> None:
    """Periodic (one copy per run): purge what is older than TORI_RETENTION_DAYS."""
    runner: Runner = context.additional_context["runner"]
    counts = await maintenance.purge(runner.db, runner.storage, runner.settings.tori_retention_days)
    counts["webhook_deliveries"] = await deliveries.purge(
        runner.db, runner.settings.tori_retention_days
    )
    await maintenance.purge_queue_rows(context.app)
    log.info("retention done", extra={"event": "retention.done", **counts})


def build_ingest_app(url: str, settings: Settings, *, max_connections: int) -> procrastinate.App:
    app = procrastinate.App(connector=connector(url, max_size=max_connections))
    app.task(name=jobs.TASK_NAME, queue=jobs.QUEUE, pass_context=True, retry=IngestRetry())(ingest)
    app.task(name=parts.TASK_NAME, queue=jobs.QUEUE, pass_context=True, retry=IngestRetry())(part)
    retention_task = app.task(
        name=RETENTION_TASK, queue=jobs.QUEUE, pass_context=True, priority=RETENTION_PRIORITY
    )(run_retention)
    app.periodic(cron=RETENTION_CRON, periodic_id="retention")(retention_task)
    return app
