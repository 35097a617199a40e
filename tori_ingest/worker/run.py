"""The worker loop of one process: Procrastinate over the pool, restarted when it stops."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

import procrastinate

from tori_ingest.store import jobs
from tori_ingest.worker import maintenance, tasks, webhooks
from tori_ingest.worker.runner import Runner, WorkerContext

log = logging.getLogger(__name__)

MAX_RESTART_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 60.0


async def run_worker(ctx: WorkerContext, url: str) -> None:
    """The ingest worker and the webhook delivery worker (its own queue and concurrency), until
    cancelled (cancelling it is the graceful stop: both stop at once, each with its grace)."""
    await asyncio.gather(_run_ingest(ctx, url), webhooks.run_deliveries(ctx, url))


async def _run_ingest(ctx: WorkerContext, url: str) -> None:
    await ctx.pool.wait_warm()
    runner = Runner(ctx)
    app = tasks.build_app(url, ctx.settings, max_connections=ctx.pool.size + 4)
    async with app.open_async():
        grace = ctx.settings.tori_shutdown_grace_s
        recovery = asyncio.create_task(maintenance.recover_stalled_forever(app, ctx.db, grace))
        backoff = 1.0
        try:
            while True:
                started = time.monotonic()
                try:
                    await _work(app, ctx, runner)
                    # Stopping is done by cancelling this task, so a return means Procrastinate
                    # gave up by itself (a side task lost the database): start it again.
                    log.warning("worker stopped by itself; restarting")
                except Exception as exc:
                    # Typically the database went away under the worker (ConnectorException,
                    # pool timeouts): start it again, with backoff, until it is back.
                    log.warning("worker stopped on an error; restarting", exc_info=exc)
                if time.monotonic() - started > HEALTHY_AFTER_S:  # it had been healthy
                    backoff = 1.0
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)
        finally:
            recovery.cancel()


async def _work(app: procrastinate.App, ctx: WorkerContext, runner: Runner) -> None:
    await app.run_worker_async(
        queues=[jobs.QUEUE],
        name=f"{socket.gethostname()}:{os.getpid()}",
        # One job more than the pool runs: the next job's database round trips happen while
        # the pool is still busy, so no core idles between jobs. (Pool timeouts count from the
        # real start in a process.)
        concurrency=ctx.pool.size + 1,
        additional_context={"runner": runner},
        install_signal_handlers=False,
        shutdown_graceful_timeout=ctx.settings.tori_shutdown_grace_s,
        delete_jobs="successful",
        listen_notify=True,
        update_heartbeat_interval=maintenance.HEARTBEAT_S,
        stalled_worker_timeout=maintenance.stalled_after(ctx.settings.tori_shutdown_grace_s),
    )
