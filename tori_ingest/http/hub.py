"""Job status events: one LISTEN connection per process, fanned out to subscribers in memory.

Postgres announces every job change (trigger in `sql/002_job_events.sql`; the payload is
`tori_job_event()` of `sql/005_job_event_function.sql`, which snapshots read too). If the listening
connection drops (database restart, `pg_terminate_backend`), the hub reconnects with backoff
and then asks every subscriber to resync from a fresh snapshot, so no terminal event is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Iterable
from typing import Protocol

import asyncpg
from pydantic import ValidationError

from tori_ingest.core.models import JobEvent
from tori_ingest.store import views
from tori_ingest.store.db import ping

log = logging.getLogger(__name__)

CHANNEL = "tori_job_events"
APPLICATION_NAME = "tori-ingest events"  # lets operators (and tests) find the LISTEN connection
HEALTH_CHECK_S = 5.0
MAX_BACKOFF_S = 5.0
STOP_PATIENCE_S = 2.0  # then the listener is cancelled again (a dropped cancellation)


class Subscriber(Protocol):
    def push(self, event: JobEvent, *, snapshot: bool = False) -> None: ...

    async def resync(self) -> None: ...


async def snapshots(
    db: asyncpg.Pool, job_ids: Iterable[str], owner: str | None = None
) -> dict[str, JobEvent]:
    """The current state of each job, exactly as its next NOTIFY would carry it (with
    `owner`, only that owner's jobs: the others do not exist for this subscriber)."""
    rows = await views.events(db, [uuid.UUID(i) for i in job_ids], owner)
    events = [JobEvent.model_validate_json(r) for r in rows]
    return {e.job_id: e for e in events}


class EventHub:
    def __init__(self, url: str) -> None:
        self.url = url
        self.connected = asyncio.Event()
        self.reconnects = 0
        self._subs: dict[str, set[Subscriber]] = {}
        self._all: set[Subscriber] = set()  # dashboard feeds: every job's events
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-listener")

    async def stop(self) -> None:
        # Cancelled again while it runs: Python 3.11 can drop a cancellation (worker/supervise).
        while self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task], timeout=STOP_PATIENCE_S)

    def subscribe(self, job_id: str, sub: Subscriber) -> None:
        self._subs.setdefault(job_id, set()).add(sub)

    def unsubscribe(self, job_id: str, sub: Subscriber) -> None:
        subs = self._subs.get(job_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[job_id]

    def subscribe_all(self, sub: Subscriber) -> None:
        self._all.add(sub)

    def unsubscribe_all(self, sub: Subscriber) -> None:
        self._all.discard(sub)

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        try:
            event = JobEvent.model_validate_json(payload)
        except ValidationError:
            log.warning(
                "unreadable job event",
                extra={"event": "events.unreadable", "payload": payload[:200]},
            )
            return
        for sub in (*self._subs.get(event.job_id, ()), *self._all):
            sub.push(event)

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self.url, timeout=10, server_settings={"application_name": APPLICATION_NAME}
                )
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(CHANNEL, self._on_notify)
                self.connected.set()
                backoff = 0.1
                if not first:
                    self.reconnects += 1
                    log.info(
                        "event listener reconnected; resyncing subscribers",
                        extra={"event": "events.reconnected"},
                    )
                first = False
                # Events may have been missed while no LISTEN was active (also before the very
                # first connect): every subscriber gets a fresh snapshot, retried until it works.
                resync = asyncio.create_task(self._resync_all(lost), name="event-resync")
                try:
                    await self._watch(conn, lost)
                finally:
                    resync.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "event listener connection failed",
                    extra={"event": "events.connect_failed", "error": type(exc).__name__},
                )
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(backoff + random.random() * backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is gone (closed, or silently dead: the query times out)."""
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), HEALTH_CHECK_S)
            if lost.is_set():
                return
            await ping(conn, HEALTH_CHECK_S)

    async def _resync_all(self, lost: asyncio.Event) -> None:
        """Snapshot every subscriber; retry the failed ones with backoff while connected."""
        pending = {sub for group in self._subs.values() for sub in group} | self._all
        backoff = 0.1
        while pending and not lost.is_set():
            subs = list(pending)
            results = await asyncio.gather(*(s.resync() for s in subs), return_exceptions=True)
            failed = [
                (s, r) for s, r in zip(subs, results, strict=True) if isinstance(r, Exception)
            ]
            for _, error in failed:
                log.warning(
                    "resync failed for a subscriber; retrying",
                    extra={"event": "events.resync_failed", "error": type(error).__name__},
                )
            pending = {s for s, _ in failed}
            if pending:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _conn: event.set()
