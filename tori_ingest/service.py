"""Running one copy of the binary: `serve` (API + worker in one event loop) or `worker`.

The one module that wires the process kinds together: it builds the resources (database
pool, storage, process pool, event hub) and hands the HTTP layer and the worker each only
what they need.

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
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import asyncpg
import uvicorn

from tori_ingest import __version__
from tori_ingest.core.errors import StartupError
from tori_ingest.core.settings import Settings, is_loopback, mask_url
from tori_ingest.http.app import build_api, build_probe_api
from tori_ingest.http.context import Context
from tori_ingest.http.hub import EventHub
from tori_ingest.http.protocol import BoundedHttpToolsProtocol
from tori_ingest.pipeline.nlp import resolve_model
from tori_ingest.pipeline.ocr import check_languages
from tori_ingest.store import migrate
from tori_ingest.store.backend import Storage, open_storage
from tori_ingest.store.db import close_pool, create_pool
from tori_ingest.worker.context import WorkerContext
from tori_ingest.worker.pool import Pool
from tori_ingest.worker.workers import run_worker

log = logging.getLogger(__name__)


@dataclass
class Resources:
    """Everything one process opened at start and closes at exit."""

    settings: Settings
    url: str
    db: asyncpg.Pool
    storage: Storage
    pool: Pool | None
    hub: EventHub | None

    def http(self, local_only: bool = False) -> Context:
        return Context(self.settings, self.db, self.storage, self.pool, self.hub, local_only)

    def worker(self) -> WorkerContext:
        assert self.pool is not None
        return WorkerContext(self.settings, self.db, self.storage, self.pool)


@contextlib.asynccontextmanager
async def open_resources(
    settings: Settings, url: str, *, with_pool: bool, with_events: bool = False
) -> AsyncIterator[Resources]:
    model = resolve_model(settings.tori_spacy_model) if with_pool else None
    if with_pool:
        check_languages(settings.tori_ocr_languages)  # a missing model: one line, at start
    if settings.tori_auto_migrate:
        await migrate.migrate_url(url)
    storage = open_storage(settings)
    db = await create_pool(url, max_size=10)
    async with db.acquire() as conn:
        problems = await migrate.check_procrastinate_api(conn)
    if problems:
        await close_pool(db)
        raise StartupError(
            "the database schema does not match this version (" + "; ".join(problems) + "): "
            "run `tori-ingest migrate`"
        )
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
            "tori-ingest starting",
            extra={
                "event": "service.starting",
                "version": __version__,
                "model": model,
                "pool_size": pool.size if pool else 0,
                "database": mask_url(url),
                "storage": f"{storage.kind} {mask_url(storage.location)}",
            },
        )
        yield Resources(settings, url, db, storage, pool, hub)
    finally:
        try:
            if hub is not None:
                await hub.stop()
            if pool is not None:
                await asyncio.to_thread(pool.stop)
        finally:  # a connection left open would make the embedded Postgres wait at its stop
            await close_pool(db)
            log.info("stopped: pools closed", extra={"event": "service.stopped"})


class _Server(uvicorn.Server):
    """uvicorn, minus its own signal handling: this process stops API and worker together."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info(
        "stopping: no new jobs; in-flight jobs get TORI_SHUTDOWN_GRACE_S to finish"
        " (Ctrl-C again to exit at once)",
        extra={"event": "service.stopping"},
    )
    loop.add_signal_handler(signal.SIGINT, _exit_now)


def _exit_now() -> None:
    """A second Ctrl-C: the person wants out now (in-flight jobs go back to the queue when a
    worker notices this one is gone)."""
    log.warning("second interrupt: exiting now", extra={"event": "service.forced_exit"})
    logging.shutdown()
    os._exit(130)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts: a port in use is one clear
    error at once, not a traceback after the database and the pool came up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def serve(settings: Settings, url: str, *, sock: socket.socket, worker: bool) -> None:
    host, port = sock.getsockname()[:2]
    async with open_resources(settings, url, with_pool=worker, with_events=True) as res:
        local_only = not settings.api_tokens and is_loopback(host)
        server = _Server(
            _uvicorn_config(
                build_api(res.http(local_only)), host, port, settings.forwarded_allow_ips
            )
        )
        running = [asyncio.create_task(server.serve(sockets=[sock]), name="http")]
        if worker:
            running.append(asyncio.create_task(run_worker(res.worker(), url), name="worker"))
        announce = asyncio.create_task(_announce_ready(server, res, f"http://{host}:{port}"))
        try:
            await _run_until_stopped(running, on_stop=lambda: setattr(server, "should_exit", True))
        finally:
            announce.cancel()


async def _announce_ready(server: _Server, res: Resources, url: str) -> None:
    """One "ready" line, when /readyz would pass: listening, and the pool warm if any."""
    await server.listening.wait()
    if res.pool is not None:
        await res.pool.wait_warm()
    log.info(f"ready on {url} (API docs: {url}/docs)", extra={"event": "service.ready"})


async def work(settings: Settings, url: str) -> None:
    async with open_resources(settings, url, with_pool=True) as res:
        running = [asyncio.create_task(run_worker(res.worker(), url), name="worker")]
        probes: _Server | None = None
        if settings.tori_metrics_port:  # /metrics, /healthz, /readyz of a worker-only copy
            probes = _Server(
                _uvicorn_config(
                    build_probe_api(res.http()),
                    settings.tori_host,
                    settings.tori_metrics_port,
                    settings.forwarded_allow_ips,
                )
            )
            running.append(asyncio.create_task(probes.serve(), name="probes"))
        await _run_until_stopped(
            running, on_stop=lambda: probes is not None and setattr(probes, "should_exit", True)
        )


def _uvicorn_config(app: object, host: str, port: int, proxies: str | None) -> uvicorn.Config:
    """`proxies` (FORWARDED_ALLOW_IPS): the only peers whose X-Forwarded-For/-Proto count."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        access_log=True,
        ws="websockets-sansio",
        http=BoundedHttpToolsProtocol,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or "",
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
    log.info("stopped: no HTTP, no worker", extra={"event": "service.tasks_stopped"})
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result
