"""The process pool that does the CPU work, seen from the event loop.

pebble gives what `concurrent.futures` cannot: a per-task timeout that kills the process,
a crashed process that fails only its own task and is replaced, and recycling after N tasks.
Processes come from a forkserver that has already imported spaCy, so a replacement starts
fast; each then loads the pipeline once (`pipeline.init_process`) and says so on the events
queue, which also carries per-page progress back to the worker.

Lanes: the pool has one process more than TORI_POOL_SIZE, and bulk jobs may hold at most
TORI_POOL_SIZE of them, so an interactive job always finds a process even while every other
one runs a long bulk OCR job (a 100-page scan takes about two minutes). Measured with a pool
of 2 busy with two 100-page bulk scans: an interactive 3-page PDF waited 125 s for a process
before, 0.12-0.15 s now (it shares the cores with the two bulk jobs, which took as long).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import CancelledError as FutureCancelled
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from pebble import ProcessExpired, ProcessPool
from pebble.common import CONSTS

from tori_ingest.core import metrics
from tori_ingest.core.errors import JobError
from tori_ingest.core.models import Processed
from tori_ingest.core.settings import Settings
from tori_ingest.core.vocab import ErrorCode, Lane
from tori_ingest.pipeline import process
from tori_ingest.worker.pool_events import EventReceiver

log = logging.getLogger(__name__)

# Pool processes ignore SIGTERM (see pipeline.init_process), so pebble's polite terminate()
# before its SIGKILL only adds delay to a timeout or cancel: keep that wait short.
CONSTS.term_timeout = 0.2

ProgressHandler = Callable[[str, int, int], None]


class Pool:
    def __init__(self, settings: Settings, model: str) -> None:
        self.size = settings.tori_pool_size
        self.processes = self.size + 1  # one that bulk jobs never take (see above)
        self._bulk = asyncio.Semaphore(self.size)
        metrics.POOL_SIZE.set(self.size)
        self.timeout = float(settings.tori_job_timeout_s)
        self.max_pages = settings.tori_max_pages
        self.started_processes = 0
        self.on_progress: ProgressHandler | None = None
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["tori_ingest.worker.forkserver"])
        self._events = EventReceiver()
        self._warm = asyncio.Event()
        self._pool = ProcessPool(
            max_workers=self.processes,
            max_tasks=settings.tori_max_tasks_per_child,
            initializer=process.init_process,
            initargs=(
                model,
                settings.tori_max_memory_mb,
                self._events.sender(),
                settings.tori_test_hooks,
                process.PipelineConfig(
                    settings.tori_ocr,
                    settings.tori_ocr_languages,
                    settings.tori_ocr_dpi,
                    settings.tori_extractor,
                    settings.tori_chunk_words,
                ),
            ),
            context=self._ctx,
        )

    def start(self) -> None:
        """Spawn every process now (pebble starts lazily) so the model loads before any job."""
        self._events.start(self._dispatch)
        for _ in range(self.processes):
            self._pool.schedule(process.ping)

    @property
    def warm(self) -> bool:
        return self._warm.is_set()

    async def wait_warm(self) -> None:
        await self._warm.wait()

    async def run(
        self,
        job_id: str,
        path: str,
        password: str | None,
        ocr: str | None = None,
        lane: Lane = Lane.INTERACTIVE,
        split_pages: int = 0,
    ) -> Processed | list[tuple[int, int]]:
        """Run one job's CPU work; a hang, crash or cancel kills only that job's process. A
        PDF longer than `split_pages` gives its read parts' page ranges instead."""
        result: Processed | list[tuple[int, int]] = await self.call(
            process.process, (job_id, path, password, self.max_pages, ocr, split_pages), lane
        )
        return result

    async def call(
        self, fn: Callable[..., Any], args: tuple[Any, ...], lane: Lane = Lane.INTERACTIVE
    ) -> Any:
        """`fn(*args)` in a pool process, within TORI_JOB_TIMEOUT_S (a job, or one part of a
        split one). A bulk call first waits for one of the TORI_POOL_SIZE processes bulk work
        may use."""
        if lane is Lane.BULK:
            async with self._bulk:
                return await self._call(fn, args)
        return await self._call(fn, args)

    async def _call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        future = self._pool.schedule(fn, args=args, timeout=self.timeout)
        try:
            return await asyncio.wrap_future(future)
        except FutureTimeout:
            raise JobError(
                ErrorCode.TIMEOUT, f"processing took longer than {self.timeout:g} s and was stopped"
            ) from None
        except ProcessExpired as exc:
            raise JobError(
                ErrorCode.WORKER_CRASHED, f"the pool process died ({exc}, exit code {exc.exitcode})"
            ) from None
        except MemoryError:
            raise JobError(
                ErrorCode.TOO_LARGE, "the document needs more memory than TORI_MAX_MEMORY_MB allows"
            ) from None
        except (asyncio.CancelledError, FutureCancelled):
            future.cancel()  # pebble terminates the process running it
            raise

    def stop(self) -> None:
        """Stop every pool process; never raises, so the shutdown after it (closing the
        database pools, then the embedded Postgres) always runs."""
        self._pool.stop()
        try:
            self._pool.join(timeout=10)
        except TimeoutError:
            log.warning(
                "pool processes still running at shutdown", extra={"event": "pool.join_timeout"}
            )
        finally:
            self._events.close()

    def _dispatch(self, event: tuple[Any, ...]) -> None:
        if event[0] == "ready":
            self.started_processes += 1
            metrics.POOL_STARTS.inc()
            if self.started_processes >= self.processes:
                self._warm.set()
        elif event[0] == "progress" and self.on_progress is not None:
            self.on_progress(event[1], event[2], event[3])
