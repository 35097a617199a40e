"""Running one copy of the binary: `serve` (API + worker in one event loop) or `worker`.

Start-up order matters: database (embedded or not) → migrations → connection pools →
process pool (model loading, in the background) → HTTP server and Procrastinate worker.
SIGTERM/SIGINT stop the HTTP server and let the worker finish in-flight jobs within
`TORI_SHUTDOWN_GRACE_S`; unfinished ones go back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator

import uvicorn

from tori_ingest import __version__, api, migrate, nlp, tasks
from tori_ingest.db import create_pool
from tori_ingest.events import EventHub
from tori_ingest.pool import Pool
from tori_ingest.settings import Settings, mask_url
from tori_ingest.storage import Storage

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def open_context(
    settings: Settings, url: str, *, with_pool: bool, with_events: bool = False
) -> AsyncIterator[api.Context]:
    model = nlp.resolve_model(settings.tori_spacy_model) if with_pool else None
    if settings.auto_migrate:
        await migrate.migrate_url(url)
    storage = Storage(settings.storage_dir, settings.import_dir)
    storage.prepare()
    db = await create_pool(url, max_size=10)
    pool: Pool | None = None
    hub: EventHub | None = None
    try:
        if model is not None:
            pool = Pool(settings, model)
            pool.start()
        if with_events:
            hub = EventHub(url)
            hub.start()
        log.info(
            "tori-ingest started",
            extra={
                "version": __version__,
                "model": model,
                "pool_size": pool.size if pool else 0,
                "database": mask_url(url),
                "storage": str(storage.root),
            },
        )
        yield api.Context(settings=settings, db=db, storage=storage, pool=pool, hub=hub)
    finally:
        if hub is not None:
            await hub.stop()
        if pool is not None:
            await asyncio.to_thread(pool.stop)
        await db.close()


async def run_worker(ctx: api.Context, url: str) -> None:
    """The Procrastinate worker, until cancelled (cancelling it is the graceful stop)."""
    assert ctx.pool is not None
    await ctx.pool.wait_warm()
    runner = tasks.Runner(ctx.settings, ctx.db, ctx.storage, ctx.pool)
    app = tasks.build_app(url, ctx.settings, max_connections=ctx.pool.size + 4)
    async with app.open_async():
        recovery = asyncio.create_task(tasks.recover_stalled_forever(app, ctx.db))
        backoff = 1.0
        try:
            while True:
                started = time.monotonic()
                try:
                    await app.run_worker_async(
                        queues=[tasks.jobs.QUEUE],
                        name=f"{socket.gethostname()}:{os.getpid()}",
                        # One job more than the pool runs: the next job's database round trips
                        # happen while the pool is still busy, so no core idles between jobs.
                        # (Pool timeouts count from the real start in a process.)
                        concurrency=ctx.pool.size + 1,
                        additional_context={"runner": runner},
                        install_signal_handlers=False,
                        shutdown_graceful_timeout=ctx.settings.tori_shutdown_grace_s,
                        delete_jobs="successful",
                        listen_notify=True,
                        update_heartbeat_interval=tasks.HEARTBEAT_S,
                        stalled_worker_timeout=tasks.STALLED_AFTER_S,
                    )
                    # Stopping is done by cancelling this task, so a return means Procrastinate
                    # gave up by itself (a side task lost the database): start it again.
                    log.warning("worker stopped by itself; restarting")
                except Exception as exc:
                    # Typically the database went away under the worker (ConnectorException,
                    # pool timeouts): start it again, with backoff, until it is back.
                    log.warning("worker stopped on an error; restarting", exc_info=exc)
                if time.monotonic() - started > 60:  # it had been healthy: retry soon
                    backoff = 1.0
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
        finally:
            recovery.cancel()


class _Server(uvicorn.Server):
    """uvicorn, minus its own signal handling: this process stops API and worker together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: no new jobs; in-flight jobs get TORI_SHUTDOWN_GRACE_S to finish")


async def serve(settings: Settings, url: str, *, host: str, port: int, worker: bool) -> None:
    async with open_context(settings, url, with_pool=worker, with_events=True) as ctx:
        server = _Server(_uvicorn_config(api.build_app(ctx), host, port))
        running = [asyncio.create_task(server.serve(), name="http")]
        if worker:
            running.append(asyncio.create_task(run_worker(ctx, url), name="worker"))
        await _run_until_stopped(running, on_stop=lambda: setattr(server, "should_exit", True))


async def work(settings: Settings, url: str) -> None:
    async with open_context(settings, url, with_pool=True) as ctx:
        running = [asyncio.create_task(run_worker(ctx, url), name="worker")]
        probes: _Server | None = None
        if settings.tori_metrics_port:  # /metrics, /healthz, /readyz of a worker-only copy
            probes = _Server(
                _uvicorn_config(
                    api.build_probe_app(ctx), settings.tori_host, settings.tori_metrics_port
                )
            )
            running.append(asyncio.create_task(probes.serve(), name="probes"))
        await _run_until_stopped(
            running, on_stop=lambda: probes is not None and setattr(probes, "should_exit", True)
        )


def _uvicorn_config(app: object, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        access_log=True,
        ws="websockets-sansio",
        proxy_headers=True,
        timeout_graceful_shutdown=5,
        ws_ping_interval=20,
        ws_ping_timeout=20,
    )


async def _run_until_stopped(
    running: list[asyncio.Task[None]], on_stop: Callable[[], object]
) -> None:
    signalled = asyncio.create_task(_until_signal())
    await asyncio.wait([signalled, *running], return_when=asyncio.FIRST_COMPLETED)
    on_stop()
    for task in running:
        if task.get_name() == "worker" and not task.done():
            task.cancel()  # Procrastinate's graceful stop: in-flight jobs get the grace period
    results = await asyncio.gather(*running, return_exceptions=True)
    signalled.cancel()
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result
