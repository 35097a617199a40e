"""Prometheus metrics (`tori_*`): counted where things happen, job states read from Postgres.

Per-process counters (requests, outcomes, pages) are summed by Prometheus across copies; the
state of the whole system (jobs by state, queue depth per lane) comes from one cheap query at
scrape time, so every copy reports the same truth.
"""

from __future__ import annotations

import time

import asyncpg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tori_ingest.core.metrics import (
    COPIES,
    HTTP_LATENCY,
    HTTP_REQUESTS,
    JOBS_BY_STATE,
    QUEUE_DEPTH,
    QUEUE_OLDEST,
    READY,
    WEBHOOK_DELIVERIES,
)
from tori_ingest.core.vocab import DeliveryState, ErrorCode, Lane, Status
from tori_ingest.http import probes
from tori_ingest.http.middleware import escaped_code
from tori_ingest.store import copies, dashboard, deliveries, views


async def refresh_from_database(db: asyncpg.Pool) -> None:
    counts = await views.state_counts(db)
    for status in Status:
        for lane in Lane:
            JOBS_BY_STATE.labels(status=status, lane=lane).set(counts.get((status, lane), 0))
    for lane in Lane:
        QUEUE_DEPTH.labels(lane=lane).set(counts.get((Status.QUEUED, lane), 0))
    by_state = await deliveries.state_counts(db)
    for state in DeliveryState:
        WEBHOOK_DELIVERIES.labels(state=state).set(by_state.get(state, 0))
    ages = await dashboard.queue_ages(db)
    for lane in Lane:
        QUEUE_OLDEST.labels(lane=lane).set(ages.get(lane, 0))
    live, stalled = await copies.census(db)
    COPIES.labels(state="live").set(live)
    COPIES.labels(state="stalled").set(stalled)


async def metrics_endpoint(request: Request) -> Response:
    READY.set(0 if await probes.not_ready(request.app.state.ctx) else 1)
    await refresh_from_database(request.app.state.ctx.db)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """Counts and times every HTTP request by its route template (not its raw path), labelled
    with the status the client got, also when an exception becomes the answer outside."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            if status is None:  # answered by `RequestContext`, outside: count what it sends
                status = escaped_code(exc).http_status
            raise
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            label = str(status or ErrorCode.INTERNAL.http_status)
            HTTP_REQUESTS.labels(method=method, route=route, status=label).inc()
            HTTP_LATENCY.labels(method=method, route=route).observe(time.perf_counter() - started)
