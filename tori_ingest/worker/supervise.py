"""Running a Procrastinate worker for as long as the copy runs: one restart policy and one set
of worker options for every queue (ingest lanes, webhook deliveries).

Stopping is done by cancelling; a worker that returns or raises by itself (typically the
database went away under it) is started again with exponential backoff, reset once it had
been healthy for HEALTHY_AFTER_S.

Cancelling for sure, on Python 3.11: `asyncio.wait_for` drops a cancellation that lands just
as what it waits for completes (fixed in 3.12). psycopg_pool waits that way while a worker
opens its connection pool, so a SIGTERM at that moment left the worker running for ever and
`serve` never exited. Two defences: a task asked to stop (`Task.cancelling()` still counts the
dropped request) starts no new run, and a cancel that went unheeded is sent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import procrastinate

from tori_ingest.worker import maintenance
from tori_ingest.worker.identity import copy_name

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 1.0
MAX_RESTART_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 60.0
CANCEL_AGAIN_EVERY_S = 1.0


def asked_to_stop() -> bool:
    """Whether the running task has been cancelled, even if the CancelledError was dropped."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], patience: float) -> None:
    """Cancel `tasks` and wait until each has ended. One still running `patience` seconds
    later (the time its own graceful stop may take) is cancelled again, every
    CANCEL_AGAIN_EVERY_S, until it ends. Exceptions stay in the tasks for the caller."""
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    wait = patience
    while pending:
        _, pending = await asyncio.wait(pending, timeout=wait)
        for task in pending:
            log.warning(
                f"task {task.get_name()} ignored its cancellation; cancelling it again",
                extra={"event": "task.cancel_again", "task": task.get_name()},
            )
            task.cancel()
        wait = CANCEL_AGAIN_EVERY_S


async def keep_running(what: str, run: Callable[[], Awaitable[None]]) -> None:
    """`run()` again and again until cancelled, with backoff between failed starts."""
    backoff = FIRST_BACKOFF_S
    while not asked_to_stop():  # a dropped cancellation must not start another run
        started = time.monotonic()
        try:
            await run()
            log.warning(f"{what} stopped by itself; restarting")
        except Exception as exc:
            log.warning(f"{what} stopped on an error; restarting", exc_info=exc)
        if time.monotonic() - started > HEALTHY_AFTER_S:  # it had been healthy
            backoff = FIRST_BACKOFF_S
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)


async def run_procrastinate(
    app: procrastinate.App,
    *,
    queues: list[str],
    concurrency: int,
    context: dict[str, Any],
    grace_s: float,
    shutdown_s: float | None = None,
    name_suffix: str = "",
    **options: Any,
) -> None:
    """One Procrastinate worker on `queues`, named after this copy (`host:pid` + suffix), with
    the heartbeat and stall threshold the stalled-job recovery relies on."""
    await app.run_worker_async(
        queues=queues,
        name=copy_name() + name_suffix,
        concurrency=concurrency,
        additional_context=context,
        install_signal_handlers=False,
        shutdown_graceful_timeout=grace_s if shutdown_s is None else shutdown_s,
        delete_jobs="successful",
        listen_notify=True,
        update_heartbeat_interval=maintenance.HEARTBEAT_S,
        stalled_worker_timeout=maintenance.stalled_after(grace_s),
        **options,
    )
