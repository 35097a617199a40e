"""Rate limits per caller shared by every copy (`TORI_RATE_LIMIT`), and admission control:
bulk submits wait while the bulk backlog is over `TORI_BULK_BACKLOG_MAX`, and one token's
interactive submits while its own queued interactive jobs are over
`TORI_INTERACTIVE_BACKLOG_MAX` (so `"priority": "interactive"` is no way around the first).

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
from tori_ingest.core.vocab import ErrorCode, Lane
from tori_ingest.http.auth import principal
from tori_ingest.http.middleware import error_response
from tori_ingest.store import limits as counters

_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
BACKLOG_CACHE_S = 5.0
CLOSE_RATE_LIMITED = 1013  # "try again later": a WebSocket's 429


class RateLimited(Refused):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, message)
        self.retry_after = retry_after


async def hit(db: asyncpg.Pool, bucket: str, limit: int, window: int) -> None:
    """Count one request of `bucket`; RateLimited when it is over `limit` in this window."""
    now = time.time()
    start = math.floor(now / window) * window
    hits = await counters.hit(db, bucket, start)
    if hits > limit:
        retry_after = max(1, math.ceil(start + window - now))
        raise RateLimited(f"more than {limit} requests in {window} s; retry later", retry_after)


class RateLimit:
    """Pure-ASGI, inside `auth.Auth` (it needs the caller)."""

    def __init__(self, app: ASGIApp, settings: Settings, db: asyncpg.Pool) -> None:
        self.app, self.db = app, db
        self.limit = settings.rate_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if self.limit is None or kind not in ("http", "websocket") or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        who = principal_of(scope)
        try:
            await hit(self.db, who, *self.limit)  # a WebSocket opened counts as a request
        except RateLimited as exc:
            if kind == "websocket":
                await receive()
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": CLOSE_RATE_LIMITED})
                return
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
    """Submits are refused (429, Retry-After) while the backlog they would join is full: the
    bulk lane's (all callers), or this caller's own interactive jobs. Counted in jobs, not
    requests; the bulk count is cached a few seconds."""

    def __init__(self, settings: Settings) -> None:
        self.bulk_cap = settings.tori_bulk_backlog_max
        self.interactive_cap = settings.tori_interactive_backlog_max
        self._count, self._at = 0, 0.0

    async def check(self, db: asyncpg.Pool, lane: Lane, jobs: int, owner: str | None) -> None:
        """`owner` None (auth off: one caller, no token to cap) leaves interactive uncapped."""
        if lane is Lane.INTERACTIVE and owner is None:
            return
        cap = self.bulk_cap if lane is Lane.BULK else self.interactive_cap
        if jobs > cap:
            raise Refused(
                ErrorCode.BAD_REQUEST,
                f"{jobs} {lane} jobs in one request: more than its backlog may hold ({cap})",
            )
        if lane is Lane.BULK:
            if time.monotonic() - self._at > BACKLOG_CACHE_S:
                self._count = await counters.queued(db, Lane.BULK, None, cap + 1)
                self._at = time.monotonic()
            queued = self._count
        else:
            queued = await counters.queued(db, Lane.INTERACTIVE, owner, cap + 1)
        if queued + jobs > cap:
            whose = "the bulk backlog" if lane is Lane.BULK else "your interactive backlog"
            message = f"{whose} is full ({queued} queued, at most {cap}); retry later"
            raise RateLimited(message, retry_after=60 if lane is Lane.BULK else 10)
        if lane is Lane.BULK:
            self._count += jobs  # counted until the next read: the cap holds between reads too
