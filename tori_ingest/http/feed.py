"""The dashboard's live feed on `/ws` (`{"dashboard": true}`): every job event the viewer may
see, coalesced so that a burst of 100 jobs/s does not flood a browser.

Per job only its newest state waits (a job that moves 50 times between two batches costs one
entry), at most MAX_BATCH_EVENTS jobs wait, and a batch goes out every FLUSH_S, but only once
the previous one was sent: a browser that reads slowly gets fewer, fuller batches, never a
growing backlog. Changes beyond the cap are counted (`dropped`), and the page then re-reads
its snapshot (`GET /ui/state`), which holds the aggregates anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

import asyncpg

from tori_ingest.core.dashboard import MAX_BATCH_EVENTS, DashboardBatch
from tori_ingest.core.models import JobEvent
from tori_ingest.http.hub import EventHub
from tori_ingest.store import dashboard
from tori_ingest.store.db import DB_UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

FLUSH_S = 0.5
OUTBOX_KEY = "dashboard"  # the feed's slot among a connection's pending messages
MAX_KNOWN_OWNERS = 10_000  # job id → "is it the viewer's?" answers kept (an owner never changes)


class DashboardFeed:
    """A hub subscriber for all jobs; puts one `DashboardBatch` at a time into `outbox`."""

    def __init__(
        self,
        hub: EventHub,
        db: asyncpg.Pool,
        owner: str | None,
        outbox: dict[str, Any],
        wake: asyncio.Event,
    ) -> None:
        self.hub, self.db, self.owner, self.outbox, self.wake = hub, db, owner, outbox, wake
        self.pending: dict[str, JobEvent] = {}
        self.dropped = 0
        self.resync_due = True  # the first batch tells the page to take a fresh snapshot
        self._known: OrderedDict[str, bool] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.hub.subscribe_all(self)
        self._task = asyncio.create_task(self._run(), name="dashboard-feed")

    def stop(self) -> None:
        self.hub.unsubscribe_all(self)
        if self._task is not None:
            self._task.cancel()

    def push(self, event: JobEvent, *, snapshot: bool = False) -> None:
        """Called by the hub for every job event (synchronously, on the event loop)."""
        if self._known.get(event.job_id) is False:
            return  # another owner's job
        held = self.pending.get(event.job_id)
        if held is not None:
            if event.version >= held.version:
                self.pending[event.job_id] = event
        elif len(self.pending) < MAX_BATCH_EVENTS:
            self.pending[event.job_id] = event
        else:
            self.dropped += 1

    async def resync(self) -> None:
        """The hub reconnected: events may have been missed, so the page re-reads its state."""
        self.resync_due = True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            if OUTBOX_KEY in self.outbox:
                continue  # the last batch is still unsent: keep coalescing
            if not (self.pending or self.dropped or self.resync_due):
                continue
            events, self.pending = list(self.pending.values()), {}
            dropped, self.dropped = self.dropped, 0
            resync, self.resync_due = self.resync_due, False
            try:
                events = await self._visible(events)
            except (*DB_UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
                log.warning(
                    "dashboard feed: owner lookup failed",
                    extra={"event": "ws.feed_failed", "error": repr(exc)},
                )
                events, resync = [], True
            self.outbox[OUTBOX_KEY] = DashboardBatch(events=events, dropped=dropped, resync=resync)
            self.wake.set()

    async def _visible(self, events: list[JobEvent]) -> list[JobEvent]:
        """The events of jobs the viewer may see (an admin: all; an owner: its own)."""
        if self.owner is None:
            return events
        unknown = [e.job_id for e in events if e.job_id not in self._known]
        mine = await dashboard.owned(self.db, unknown, self.owner) if unknown else set()
        for job_id in unknown:
            self._known[job_id] = job_id in mine
        visible = [e for e in events if self._known.get(e.job_id)]
        while len(self._known) > MAX_KNOWN_OWNERS:
            self._known.popitem(last=False)
        return visible
