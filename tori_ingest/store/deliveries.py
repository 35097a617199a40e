"""Webhook deliveries in Postgres: one row per event (created by the trigger of
`sql/008_webhooks.sql` when a job with a callback reaches a terminal state), one row per try.

Every write of a try is fenced by the delivery's `state` and its current queue job: a try
that was given back to the queue (a dead worker) or outlived an erase records nothing, and the
next try's queue entry is created in the same transaction that records this one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from tori_ingest.core.models import JobView
from tori_ingest.core.settings import mask_url
from tori_ingest.core.vocab import DeliveryState, EventType, Status
from tori_ingest.core.webhooks import Delivery, DeliveryAttempt, WebhookEvent, webhook_id
from tori_ingest.store import views

QUEUE = "webhooks"  # also written in sql/008_webhooks.sql (a test checks they agree)
TASK_NAME = "tori.webhook"
MAX_ERROR = 500

_DEFER = """
SELECT (procrastinate_defer_jobs_v1(ARRAY[ROW(
    $1::varchar, $2::varchar, 0, NULL::text, NULL::text,
    jsonb_build_object('delivery_id', $3::uuid), $4::timestamptz
)::procrastinate_job_to_defer_v1]))[1]
"""


@dataclass(frozen=True)
class Claimed:
    """A pending delivery, as its current queue job sees it before a try."""

    id: uuid.UUID
    job_id: uuid.UUID
    url: str
    created_at: datetime
    attempts: int
    snapshot: str | None
    payload: str | None


@dataclass(frozen=True)
class Attempt:
    """What one try found out (response bodies only as a short excerpt)."""

    at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    excerpt: str | None


async def claim(db: asyncpg.Pool, delivery_id: uuid.UUID, queue_job: int) -> Claimed | None:
    """The delivery if it is pending and `queue_job` is the one meant to try it; else None."""
    row = await db.fetchrow(
        """SELECT id, job_id, url, created_at, attempts, snapshot::text AS snapshot, payload
           FROM tori_webhook_deliveries WHERE id = $1 AND state = $2 AND queue_job_id = $3""",
        delivery_id,
        DeliveryState.PENDING,
        queue_job,
    )
    return Claimed(**dict(row)) if row is not None else None


def event_body(snapshot: str) -> str:
    """The body of a delivery, from the job row as it was at its terminal state."""
    job: dict[str, Any] = orjson.loads(snapshot)
    if job.get("summary") is not None:
        job["summary"] = orjson.dumps(job["summary"]).decode()  # as asyncpg reads jsonb
    view: JobView = views.view(job)  # a mapping like a Record
    event = WebhookEvent(
        type=EventType.of(Status(job["status"])), timestamp=view.finished_at, data=view
    )
    return event.model_dump_json()


async def record(
    db: asyncpg.Pool,
    claimed: Claimed,
    queue_job: int,
    attempt: Attempt,
    state: DeliveryState,
    next_at: datetime | None,
    body: str,
) -> bool:
    """Log a try and move the delivery on: delivered, failed, or pending with its next try
    queued for `next_at`. The first try's `body` is stored with it (and the snapshot it came
    from dropped): every later try sends exactly that. False when the try was no longer the
    delivery's (fenced)."""
    error = attempt.error[:MAX_ERROR] if attempt.error else None
    async with db.acquire() as conn, conn.transaction():
        attempts = await conn.fetchval(
            """SELECT attempts FROM tori_webhook_deliveries
               WHERE id = $1 AND state = $2 AND queue_job_id = $3 FOR UPDATE""",
            claimed.id,
            DeliveryState.PENDING,
            queue_job,
        )
        if attempts is None:
            return False
        await conn.execute(
            """INSERT INTO tori_webhook_attempts
                   (delivery_id, n, at, duration_ms, status_code, error, response_excerpt)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            claimed.id,
            attempts + 1,
            attempt.at,
            attempt.duration_ms,
            attempt.status_code,
            error,
            attempt.excerpt,
        )
        next_job = None
        if next_at is not None:
            next_job = await conn.fetchval(_DEFER, QUEUE, TASK_NAME, claimed.id, next_at)
        await conn.execute(
            """UPDATE tori_webhook_deliveries
               SET attempts = $2, state = $3, next_attempt_at = $4, last_status_code = $5,
                   last_error = $6, queue_job_id = $7,
                   delivered_at = CASE WHEN $3 = $8 THEN now() END,
                   payload = coalesce(payload, $9), snapshot = NULL
               WHERE id = $1""",
            claimed.id,
            attempts + 1,
            state,
            next_at,
            attempt.status_code,
            error,
            next_job,
            DeliveryState.DELIVERED,
            body,
        )
    return True


async def fail(db: asyncpg.Pool, delivery_id: uuid.UUID, queue_job: int, why: str) -> None:
    """End a pending delivery that can never be sent (no try is logged)."""
    await db.execute(
        """UPDATE tori_webhook_deliveries SET state = $4, last_error = $3, next_attempt_at = NULL
           WHERE id = $1 AND state = $5 AND queue_job_id = $2""",
        delivery_id,
        queue_job,
        why[:MAX_ERROR],
        DeliveryState.FAILED,
        DeliveryState.PENDING,
    )


async def for_job(db: asyncpg.Pool, job_id: uuid.UUID) -> list[Delivery]:
    """A job's deliveries, oldest first, each with its log of tries."""
    rows = await db.fetch(
        """SELECT id, event_type, url, state, created_at, attempts, next_attempt_at,
                  delivered_at, last_status_code, last_error
           FROM tori_webhook_deliveries WHERE job_id = $1 ORDER BY created_at, id""",
        job_id,
    )
    tries = await db.fetch(
        """SELECT a.delivery_id, a.n, a.at, a.duration_ms, a.status_code, a.error,
                  a.response_excerpt
           FROM tori_webhook_attempts a JOIN tori_webhook_deliveries d ON d.id = a.delivery_id
           WHERE d.job_id = $1 ORDER BY a.n""",
        job_id,
    )
    log: dict[uuid.UUID, list[DeliveryAttempt]] = {}
    for t in tries:
        log.setdefault(t["delivery_id"], []).append(
            DeliveryAttempt(
                n=t["n"],
                at=t["at"],
                duration_ms=t["duration_ms"],
                status_code=t["status_code"],
                error=t["error"],
                response_excerpt=t["response_excerpt"],
            )
        )
    return [
        Delivery(
            webhook_id=webhook_id(r["id"]),
            type=r["event_type"],
            url=mask_url(r["url"]),
            state=r["state"],
            created_at=r["created_at"],
            attempts=r["attempts"],
            next_attempt_at=r["next_attempt_at"],
            delivered_at=r["delivered_at"],
            last_status_code=r["last_status_code"],
            last_error=r["last_error"],
            log=log.get(r["id"], []),
        )
        for r in rows
    ]


async def state_counts(db: asyncpg.Pool) -> dict[DeliveryState, int]:
    """Deliveries by state (whole system, for /metrics)."""
    rows = await db.fetch("SELECT state, count(*) AS n FROM tori_webhook_deliveries GROUP BY 1")
    return {DeliveryState(r["state"]): r["n"] for r in rows}


async def purge(db: asyncpg.Pool, days: int) -> int:
    """Ended deliveries older than retention (their logs go with them); returns how many."""
    status = await db.execute(
        "DELETE FROM tori_webhook_deliveries"
        " WHERE state <> $1 AND created_at < now() - $2::interval",
        DeliveryState.PENDING,
        timedelta(days=days),
    )
    return int(status.split()[-1])
