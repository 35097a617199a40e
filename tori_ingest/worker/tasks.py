"""The Procrastinate app of a worker: the ingest task, the retention task, the retry policy."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from datetime import timedelta

import procrastinate
from procrastinate import JobContext, RetryStrategy
from procrastinate.jobs import Job
from procrastinate.retry import RetryDecision

from tori_ingest.core.settings import Settings
from tori_ingest.store import jobs
from tori_ingest.worker import maintenance
from tori_ingest.worker.runner import TRANSIENT_ERRORS, Runner

log = logging.getLogger(__name__)

RETENTION_TASK = "tori.retention"
RETENTION_CRON = "*/10 * * * *"
RETENTION_PRIORITY = 1000  # quick, and before any waiting ingest job


class JitteredRetry(RetryStrategy):
    """Exponential backoff plus up to one second of jitter, so retries of a burst spread out."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        decision = super().get_retry_decision(exception=exception, job=job)
        if decision is None or decision.retry_at is None:
            return decision
        return RetryDecision(retry_at=decision.retry_at + timedelta(seconds=random.random()))


async def ingest(context: JobContext, job_id: str) -> None:
    runner: Runner = context.additional_context["runner"]
    max_attempts = runner.settings.tori_max_attempts
    await runner.run(uuid.UUID(job_id), final_attempt=context.job.attempts + 1 >= max_attempts)


async def run_retention(context: JobContext, timestamp: int) -> None:
    """Periodic (one copy per run): purge what is older than TORI_RETENTION_DAYS."""
    runner: Runner = context.additional_context["runner"]
    counts = await maintenance.purge(runner.db, runner.storage, runner.settings.tori_retention_days)
    await maintenance.purge_queue_rows(context.app)
    log.info("retention done", extra={"event": "retention.done", **counts})


def build_app(url: str, settings: Settings, *, max_connections: int) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(conninfo=url, min_size=1, max_size=max_connections)
    app = procrastinate.App(connector=connector)
    retry = JitteredRetry(
        max_attempts=max(0, settings.tori_max_attempts - 1),
        exponential_wait=2,
        retry_exceptions=[*TRANSIENT_ERRORS, OSError, asyncio.CancelledError],  # type: ignore[list-item]
    )
    app.task(name=jobs.TASK_NAME, queue=jobs.QUEUE, pass_context=True, retry=retry)(ingest)
    retention_task = app.task(
        name=RETENTION_TASK, queue=jobs.QUEUE, pass_context=True, priority=RETENTION_PRIORITY
    )(run_retention)
    app.periodic(cron=RETENTION_CRON, periodic_id="retention")(retention_task)
    return app
