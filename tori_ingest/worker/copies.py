"""This copy reports its pool to `tori_copies` every few seconds (the dashboard, `tori_copies`).

A report is one upsert; losing a few (a database outage) only makes the copy look stalled for a
while. The row goes when the worker stops, so a row that stops beating is a copy that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

import asyncpg

from tori_ingest import __version__
from tori_ingest.store import copies
from tori_ingest.store.db import DB_UNAVAILABLE_ERRORS
from tori_ingest.worker import maintenance
from tori_ingest.worker.identity import copy_name
from tori_ingest.worker.job_run import Runner

log = logging.getLogger(__name__)

FORGET_EVERY = 30  # reports between two sweeps of long-dead copies' rows


def report(runner: Runner, grace_s: float) -> copies.Report:
    running = runner.running_jobs
    # The processes really there: a pool may keep one beyond TORI_POOL_SIZE for its lanes.
    processes = getattr(runner.pool, "processes", runner.pool.size)
    return copies.Report(
        name=copy_name(),
        host=socket.gethostname(),
        pid=os.getpid(),
        version=__version__,
        stalled_after_s=maintenance.stalled_after(grace_s),
        processes=processes,
        busy=min(len(running), processes),
        process_starts=runner.pool.started_processes,
        running=running,
    )


async def report_forever(runner: Runner) -> None:
    """Beat every HEARTBEAT_S until cancelled, then remove this copy's row."""
    grace = runner.settings.tori_shutdown_grace_s
    beats = 0
    try:
        while True:
            try:
                await copies.beat(runner.db, report(runner, grace))
                if beats % FORGET_EVERY == 0:
                    await copies.forget_dead(runner.db)
            except (*DB_UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
                log.warning(
                    "copy report failed", extra={"event": "copy.report_failed", "error": repr(exc)}
                )
            beats += 1
            await asyncio.sleep(maintenance.HEARTBEAT_S)
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await copies.remove(runner.db, copy_name())
