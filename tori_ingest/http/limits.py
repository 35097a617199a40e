"""Rate limits per caller shared by every copy (`TORI_RATE_LIMIT`), and admission control for
back-fills (bulk submits wait while the bulk backlog is over `TORI_BULK_BACKLOG_MAX`).

Postgres is the shared state: one fixed-window counter per (caller, window), bumped with an
upsert, so two copies count the same requests. Probes are never limited.
"""

from __future__ import annotations

import math
import time

import asyncpg
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from tori_ingest.core.errors import Refused
from tori_ingest.core.settings import Settings
from tori_ingest.core.vocab import ErrorCode, Lane, Status
from tori_ingest.http.auth import principal
from tori_ingest.http.middleware import error_response

_HIT = """
INSERT INTO tori_rate_limits (bucket, window_start, hits)
VALUES ($1, to_timestamp($2), 1)
ON CONFLICT (bucket, window_start) DO UPDATE SET hits = tori_rate_limits.hits + 1
RETURNING hits
"""
_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
BACKLOG_CACHE_S = 5.0


class RateLimited(Refused):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, message)
        self.retry_after = retry_after


async def hit(db: asyncpg.Pool, bucket: str, limit: int, window: int) -> None:
    """Count one request of `bucket`; RateLimited when it is over `limit` in this window."""
    now = time.time()
    start = math.floor(now / window) * window
    hits = await db.fetchval(_HIT, bucket, start)
    if hits > limit:
        retry_after = max(1, math.ceil(start + window - now))
        raise RateLimited(f"more than {limit} requests in {window} s; retry later", retry_after)


class RateLimit:
    """Pure-ASGI, inside `auth.Auth` (it needs the caller)."""

    def __init__(self, app: ASGIApp, settings: Settings, db: asyncpg.Pool) -> None:
        self.app, self.db = app, db
        self.limit = settings.rate_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.limit is None or scope["type"] != "http" or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        who = principal_of(scope)
        try:
            await hit(self.db, who, *self.limit)
        except RateLimited as exc:
            headers = {"Retry-After": str(exc.retry_after)}
            await error_response(exc.code, exc.message, headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def principal_of(scope: Scope) -> str:
    """The rate-limit bucket: the token name or ticket, else (auth off) the client address."""
    found = principal(HTTPConnection(scope))
    if found.name is not None or found.ticket_job is not None:
        return found.bucket
    client = scope.get("client") or ("unknown", 0)
    return f"address:{client[0]}"


class Admission:
    """Bulk submits are refused (429, Retry-After) while the bulk backlog is over the cap;
    interactive uploads always go through. The backlog count is cached a few seconds."""

    def __init__(self, settings: Settings) -> None:
        self.cap = settings.tori_bulk_backlog_max
        self._count, self._at = 0, 0.0

    async def check(self, db: asyncpg.Pool, lane: Lane) -> None:
        if lane is not Lane.BULK:
            return
        if time.monotonic() - self._at > BACKLOG_CACHE_S:
            self._count = await db.fetchval(
                "SELECT count(*) FROM tori_jobs WHERE lane = $1 AND status = $2",
                Lane.BULK,
                Status.QUEUED,
            )
            self._at = time.monotonic()
        if self._count >= self.cap:
            message = f"the bulk backlog is full ({self._count} queued); retry later"
            raise RateLimited(message, retry_after=60)
        self._count += 1  # counted until the next read: the cap holds between reads too
