"""Webhook delivery: a Procrastinate worker of its own, on its own queue, next to the ingest
worker of the same process, so a slow or dead receiver never holds an ingest slot.

One queue job = one try. A try that fails records itself and queues the next one (exponential
backoff with jitter, `core.webhooks.retry_delay`) in one transaction, until a 2xx, a refused
address, or the end of the retry window. Every try sends the same body and `webhook-id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import procrastinate
from procrastinate import BaseRetryStrategy, JobContext
from procrastinate.exceptions import ConnectorException
from procrastinate.jobs import Job
from procrastinate.retry import RetryDecision

from tori_ingest.core import metrics
from tori_ingest.core.logs import bound_job
from tori_ingest.core.settings import Settings
from tori_ingest.core.vocab import DeliveryState
from tori_ingest.core.webhooks import RETRY_WINDOW_S, retry_delay, webhook_id
from tori_ingest.store import deliveries
from tori_ingest.store.db import DB_UNAVAILABLE_ERRORS
from tori_ingest.worker import maintenance
from tori_ingest.worker.connector import connector
from tori_ingest.worker.context import WorkerContext
from tori_ingest.worker.delivery import ATTEMPT_TIMEOUT_S, Outcome, Sender, elapsed_ms
from tori_ingest.worker.supervise import keep_running, run_procrastinate

log = logging.getLogger(__name__)

CONCURRENCY = 8  # tries in flight per process (I/O only)
MAX_CONNECTIONS = 4  # Procrastinate's pool for this worker
POLL_S, FAST_POLL_S = 5.0, 0.1  # scheduled retries are found by polling (TORI_TEST_HOOKS: fast)
MAX_TASK_BACKOFF_S = 300.0


class UnexpectedErrorRetry(BaseRetryStrategy):
    """For a try that raised (the database went away, a bug): again later, with backoff. A
    try's own failure never raises: it records itself and queues the next try."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, asyncio.CancelledError):  # a shutdown: another worker, now
            return RetryDecision(retry_in={"seconds": 0})
        wait = min(2.0 ** (job.attempts + 1), MAX_TASK_BACKOFF_S) + random.random()
        return RetryDecision(retry_in={"seconds": wait})


class Deliverer:
    """Makes one try of a delivery and decides what comes next."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.settings: Settings = ctx.settings
        self.db = ctx.db
        self.sender = Sender(ctx.settings)

    async def deliver(self, delivery_id: uuid.UUID, queue_job: int) -> None:
        claimed = await deliveries.claim(self.db, delivery_id, queue_job)
        if claimed is None:
            return  # delivered, ended or erased meanwhile, or not this queue job's any more
        # The first try builds the body from the job's terminal snapshot and stores it with
        # its record; later tries send what is stored. (A first try that died before its record
        # is made again from the same snapshot: the same bytes.)
        body = claimed.payload
        if body is None:
            try:
                body = deliveries.event_body(claimed.snapshot or "{}")
            except (ValueError, KeyError) as exc:  # not a terminal job row: nothing to announce
                await deliveries.fail(self.db, delivery_id, queue_job, f"bad event: {exc}")
                return
        at = datetime.now(UTC)
        started = time.perf_counter()
        outcome = await self.sender.send(claimed.url, webhook_id(delivery_id), body)
        attempt = deliveries.Attempt(
            at, elapsed_ms(started), outcome.status_code, outcome.error, outcome.excerpt
        )
        state, next_at = self.next_step(outcome, claimed.attempts + 1, claimed.created_at)
        if state is DeliveryState.FAILED and not outcome.refused:
            attempt = deliveries.Attempt(
                at, attempt.duration_ms, outcome.status_code, _gave_up(outcome), outcome.excerpt
            )
        if not await deliveries.record(self.db, claimed, queue_job, attempt, state, next_at, body):
            return
        _observe(outcome, attempt.duration_ms, claimed.created_at)
        with bound_job(claimed.job_id):
            log.log(
                logging.INFO if outcome.ok else logging.WARNING,
                "webhook try",
                extra={
                    "event": f"webhook.{state}",
                    "webhook_id": webhook_id(delivery_id),
                    "attempt": claimed.attempts + 1,
                    "status_code": outcome.status_code,
                    "error": outcome.error,
                    "next_attempt_at": next_at.isoformat() if next_at else None,
                },
            )

    def next_step(
        self, outcome: Outcome, failures: int, created_at: datetime
    ) -> tuple[DeliveryState, datetime | None]:
        if outcome.ok:
            return DeliveryState.DELIVERED, None
        if outcome.refused:
            return DeliveryState.FAILED, None
        wait = retry_delay(failures, fast=self.settings.tori_test_hooks)
        next_at = datetime.now(UTC) + timedelta(seconds=wait)
        if next_at > created_at + timedelta(seconds=RETRY_WINDOW_S):
            return DeliveryState.FAILED, None
        return DeliveryState.PENDING, next_at


def _gave_up(outcome: Outcome) -> str:
    hours = RETRY_WINDOW_S / 3600
    return f"{outcome.error}; gave up: no 2xx within {hours:g} h of the event"


def _observe(outcome: Outcome, duration_ms: float, created_at: datetime) -> None:
    if outcome.ok:
        kind = "delivered"
        metrics.WEBHOOK_LATENCY.observe((datetime.now(UTC) - created_at).total_seconds())
    elif outcome.refused:
        kind = "refused"
    else:
        kind = "rejected" if outcome.status_code is not None else "error"
    metrics.WEBHOOK_ATTEMPTS.labels(outcome=kind).inc()
    metrics.WEBHOOK_ATTEMPT_SECONDS.observe(duration_ms / 1000)


async def deliver(context: JobContext, delivery_id: str) -> None:
    deliverer: Deliverer = context.additional_context["deliverer"]
    assert context.job.id is not None
    await deliverer.deliver(uuid.UUID(delivery_id), context.job.id)


def build_delivery_app(url: str) -> procrastinate.App:
    app = procrastinate.App(connector=connector(url, max_size=MAX_CONNECTIONS))
    app.task(
        name=deliveries.TASK_NAME,
        queue=deliveries.QUEUE,
        pass_context=True,
        retry=UnexpectedErrorRetry(),
    )(deliver)
    return app


async def run_deliveries(ctx: WorkerContext, url: str) -> None:
    """The delivery worker, until cancelled (restarted, with backoff, if it stops)."""
    app = build_delivery_app(url)
    deliverer = Deliverer(ctx)
    grace = ctx.settings.tori_shutdown_grace_s
    async with app.open_async():
        recovery = asyncio.create_task(_recover_stalled_forever(app, grace))
        try:
            await keep_running("webhook worker", lambda: _work(app, ctx.settings, deliverer))
        finally:
            recovery.cancel()
            await deliverer.sender.close()


async def _work(app: procrastinate.App, settings: Settings, deliverer: Deliverer) -> None:
    grace = settings.tori_shutdown_grace_s
    await run_procrastinate(
        app,
        queues=[deliveries.QUEUE],
        concurrency=CONCURRENCY,
        context={"deliverer": deliverer},
        grace_s=grace,
        shutdown_s=min(grace, ATTEMPT_TIMEOUT_S + 2),  # a delivery attempt is short
        name_suffix=":webhooks",
        fetch_job_polling_interval=FAST_POLL_S if settings.tori_test_hooks else POLL_S,
    )


async def _recover_stalled_forever(app: procrastinate.App, grace_s: float) -> None:
    """Tries held by a dead worker (no heartbeat) go back to the queue: at least once."""
    while True:
        await asyncio.sleep(maintenance.RECOVERY_EVERY_S)
        with contextlib.suppress(*DB_UNAVAILABLE_ERRORS, ConnectorException):
            stalled = await app.job_manager.get_stalled_jobs(
                queue=deliveries.QUEUE,
                task_name=deliveries.TASK_NAME,
                seconds_since_heartbeat=maintenance.stalled_after(grace_s),
            )
            for job in stalled:
                with contextlib.suppress(ConnectorException):  # another copy was first
                    await app.job_manager.retry_job(job)
