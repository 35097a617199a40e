"""Prometheus metrics (`tori_*`): counted where things happen, job states read from Postgres.

Per-process counters (requests, outcomes, pages) are summed by Prometheus across copies; the
state of the whole system (jobs by state, queue depth per lane) comes from one cheap query at
scrape time, so every copy reports the same truth.
"""

from __future__ import annotations

import time

import asyncpg
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tori_ingest import jobs

HTTP_REQUESTS = Counter(
    "tori_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "tori_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOBS_CREATED = Counter("tori_jobs_created_total", "Jobs created", ["lane", "deduplicated"])
JOBS_FINISHED = Counter(
    "tori_jobs_finished_total", "Jobs ended by this worker", ["status", "error_code"]
)
JOB_DURATION = Histogram(
    "tori_job_duration_seconds",
    "Time from start to end of a job's attempt",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
QUEUE_WAIT = Histogram(
    "tori_job_queue_wait_seconds",
    "Time from submission to start",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600),
)
PAGES = Counter("tori_pages_processed_total", "Pages of succeeded jobs")
POOL_SIZE = Gauge("tori_pool_processes", "Pool processes configured in this worker")
POOL_STARTS = Counter("tori_pool_process_starts_total", "Pool processes started (incl. recycled)")
JOBS_BY_STATE = Gauge("tori_jobs", "Jobs by state and lane (whole system)", ["status", "lane"])
QUEUE_DEPTH = Gauge("tori_queue_depth", "Jobs waiting to run, by lane (whole system)", ["lane"])

_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
_LANES = ("interactive", "bulk")


async def refresh_from_database(db: asyncpg.Pool) -> None:
    counts = await jobs.state_counts(db)
    for status in _STATES:
        for lane in _LANES:
            JOBS_BY_STATE.labels(status=status, lane=lane).set(counts.get((status, lane), 0))
    for lane in _LANES:
        QUEUE_DEPTH.labels(lane=lane).set(counts.get(("queued", lane), 0))


async def metrics_endpoint(request: Request) -> Response:
    await refresh_from_database(request.app.state.ctx.db)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """Counts and times every HTTP request by its route template (not its raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            HTTP_LATENCY.labels(method=method, route=route).observe(time.perf_counter() - started)
