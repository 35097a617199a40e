"""The worker loop of one process: Procrastinate over the pool, restarted when it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import procrastinate

from tori_ingest.store import jobs
from tori_ingest.worker import copies, maintenance, tasks, webhooks
from tori_ingest.worker.context import WorkerContext
from tori_ingest.worker.job_run import Runner
from tori_ingest.worker.supervise import cancel_and_wait, keep_running, run_procrastinate

log = logging.getLogger(__name__)

# Beyond the grace: Procrastinate aborts what still runs, and the job runner re-queues it.
STOP_MARGIN_S = 10.0


async def run_worker(ctx: WorkerContext, url: str) -> None:
    """The ingest worker and the webhook delivery worker (its own queue and concurrency), until
    cancelled (cancelling it is the graceful stop: both stop at once, each with its grace)."""
    running = [
        asyncio.create_task(_run_ingest(ctx, url), name="ingest"),
        asyncio.create_task(webhooks.run_deliveries(ctx, url), name="webhooks"),
    ]
    try:
        await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Each cancelled once, then awaited: a second cancel (as gather would send when one of
        # them stops first) would cut Procrastinate's shutdown grace short. Only a task still
        # running after the grace is cancelled again (a dropped cancellation, see supervise).
        grace = ctx.settings.tori_shutdown_grace_s
        await cancel_and_wait(running, patience=grace + STOP_MARGIN_S)
    for task in running:
        if not task.cancelled():
            task.result()  # neither returns by itself: surface a crash


async def _run_ingest(ctx: WorkerContext, url: str) -> None:
    await ctx.pool.wait_warm()
    runner = Runner(ctx)
    app = tasks.build_ingest_app(url, ctx.settings, max_connections=ctx.pool.size + 4)
    async with app.open_async():
        grace = ctx.settings.tori_shutdown_grace_s
        recovery = asyncio.create_task(
            maintenance.recover_stalled_forever(app, ctx.db, grace, ctx.settings.tori_max_attempts)
        )
        reporting = asyncio.create_task(copies.report_forever(runner))  # the dashboard's copies
        try:
            await keep_running("worker", lambda: _work(app, ctx, runner))
        finally:
            recovery.cancel()
            reporting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporting  # its row goes: a clean stop is not a stalled copy


async def _work(app: procrastinate.App, ctx: WorkerContext, runner: Runner) -> None:
    """The main worker (both lanes, by priority) and one slot for interactive jobs only: when
    every main slot holds a long bulk job, an upload is still fetched at once, and the pool
    keeps a process for it (`Pool.run`). Returns (or raises) as soon as either stops."""
    # One job more than the pool runs: the next job's database round trips happen while the
    # pool is still busy, so no core idles between jobs. (Pool timeouts count from the real
    # start in a process.)
    main = _worker(app, ctx, runner, [jobs.QUEUE, jobs.BULK_QUEUE], ctx.pool.size + 1)
    workers = [asyncio.create_task(main), asyncio.create_task(_worker(app, ctx, runner))]
    try:
        done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    for task in done:
        task.result()


async def _worker(
    app: procrastinate.App,
    ctx: WorkerContext,
    runner: Runner,
    queues: list[str] | None = None,
    concurrency: int = 1,
) -> None:
    await run_procrastinate(
        app,
        queues=queues or [jobs.QUEUE],
        concurrency=concurrency,
        context={"runner": runner},
        grace_s=ctx.settings.tori_shutdown_grace_s,
    )
