"""The dashboard's pure parts: the feed's coalescing and the alert rules."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import yaml

from tests.helpers import MONITORING, wait_for
from tori_ingest.core.dashboard import MAX_BATCH_EVENTS
from tori_ingest.core.models import JobEvent
from tori_ingest.core.vocab import Status
from tori_ingest.http.feed import FLUSH_S, OUTBOX_KEY, DashboardFeed
from tori_ingest.http.hub import EventHub

# --- the live feed --------------------------------------------------------------------------------


def _event(n: int, version: int) -> JobEvent:
    job_id = str(uuid.UUID(int=n))
    return JobEvent(
        job_id=job_id, status=Status.RUNNING, pages_done=version, pages_total=99, error=None,
        version=version,
    )  # fmt: skip


async def test_feed_keeps_the_newest_state_per_job_and_caps_a_batch() -> None:
    outbox: dict[str, Any] = {}
    wake = asyncio.Event()
    hub = EventHub("postgresql://unused")  # never started: events are pushed by hand
    feed = DashboardFeed(hub, None, None, outbox, wake)  # type: ignore[arg-type]  # no database
    for version in range(1, 51):  # 100 jobs that each move 50 times: 100 entries
        for n in range(100):
            feed.push(_event(n, version))
    for n in range(100, 100 + MAX_BATCH_EVENTS):  # more jobs than one batch holds
        feed.push(_event(n, 1))
    feed.start()
    try:
        await wait_for(lambda: OUTBOX_KEY in outbox, 10, "the first batch")
        first = outbox[OUTBOX_KEY]
        assert first.resync and first.dropped == 100 and len(first.events) == MAX_BATCH_EVENTS
        assert {e.version for e in first.events if e.job_id < str(uuid.UUID(int=100))} == {50}
        # While a batch is unsent, changes keep coalescing behind it.
        feed.push(_event(1, 51))
        feed.push(_event(1, 52))
        await asyncio.sleep(FLUSH_S * 3)  # (asserting that nothing happens needs time)
        assert outbox[OUTBOX_KEY] is first
        del outbox[OUTBOX_KEY]  # sent
        await wait_for(lambda: OUTBOX_KEY in outbox, 10, "the second batch")
        second = outbox[OUTBOX_KEY]
        assert [e.version for e in second.events] == [52] and not second.resync
    finally:
        feed.stop()


def test_alert_rules_cover_what_operators_watch() -> None:
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yml").read_text())
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    for metric in (
        "tori_queue_depth",  # queue depth per lane
        "tori_queue_oldest_seconds",  # and its age
        "tori_jobs_finished_total",  # failure rate by code
        "tori_copies",  # stalled workers
        "tori_ready",  # not ready
        "tori_pool_process_starts_total",  # pool restarts
    ):
        assert metric in exprs, metric
    assert all(r.get("annotations", {}).get("summary") for g in rules["groups"] for r in g["rules"])
