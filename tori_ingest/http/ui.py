"""`/ui`: the operator dashboard, one self-contained page served by this binary.

The page (`static/ui.html|js|css`, shipped in the wheel) loads nothing from another host: a
CSP forbids it. Its data comes from `GET /ui/state` (aggregates read from Postgres, so every
copy shows the same numbers as `GET /jobs` and `/metrics`), polled every few seconds, and from
the `/ws` dashboard feed (`http.feed`) for live job changes. It sits behind the API's own
auth: `POST /ui/login` trades a token (in the body) for a session cookie (`http.session`).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from tori_ingest.core.dashboard import (
    MAX_FAILURES,
    MAX_RUNNING,
    RANGES,
    DashboardState,
    LaneQueue,
    Login,
    StateQuery,
    Throughput,
    Viewer,
    Vocabulary,
)
from tori_ingest.core.errors import Refused
from tori_ingest.core.settings import is_loopback
from tori_ingest.core.vocab import ErrorCode, Lane, Status
from tori_ingest.http import routes
from tori_ingest.http.auth import principal
from tori_ingest.http.context import ctx
from tori_ingest.http.middleware import JSON
from tori_ingest.http.openapi import Endpoint, Op, Raw
from tori_ingest.http.session import COOKIE, TTL_S, Sessions, cookie_of, match_token
from tori_ingest.store import copies, dashboard, views

STATIC = Path(__file__).parent / "static"
ASSETS = {"ui.js": "text/javascript", "chart.js": "text/javascript", "ui.css": "text/css"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
STATE_CACHE_S = 1.0  # many open pages cost one set of queries a second per copy and viewer
TONES = {
    Status.QUEUED: "wait",
    Status.RUNNING: "busy",
    Status.SUCCEEDED: "good",
    Status.FAILED: "bad",
    Status.CANCELLED: "muted",
}


class StateCache:
    """The last snapshot per (owner, range), for STATE_CACHE_S; one per app."""

    def __init__(self) -> None:
        self.states: dict[tuple[str | None, str], tuple[float, DashboardState]] = {}
        self.locks: dict[tuple[str | None, str], asyncio.Lock] = {}  # one per token name

    @staticmethod
    def of(request: Request) -> StateCache:
        if not hasattr(request.app.state, "ui_cache"):
            request.app.state.ui_cache = StateCache()
        return request.app.state.ui_cache


async def page(request: Request) -> Response:
    """The page itself: no data in it (that needs a token), so it needs none either."""
    return FileResponse(STATIC / "ui.html", headers=_headers())


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        raise Refused(ErrorCode.NOT_FOUND, f"no such asset {name!r}")
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers=_headers())


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def _viewer(request: Request) -> Viewer:
    who = principal(request)
    return Viewer(name=who.name, admin=who.admin, auth=bool(ctx(request).settings.api_tokens))


async def login(request: Request) -> Response:
    """Token in, session cookie out (HttpOnly, SameSite=Strict); with auth off, nothing to do."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise Refused(ErrorCode.BAD_REQUEST, 'send the token as JSON: {"token": "..."}')
    body = routes.parse(Login, await routes.read_body(request, 4096))
    settings = ctx(request).settings
    if not settings.api_tokens:
        return JSON(Viewer(name=None, admin=True, auth=False))
    tokens = [(s.encode(), n) for s, n in settings.named_tokens.items()]
    token = body.token.strip().encode()
    name = match_token(tokens, token)
    if name is None:
        raise Refused(ErrorCode.UNAUTHORIZED, "invalid token")
    response = JSON(Viewer(name=name, admin=name in settings.admin_names, auth=True))
    response.set_cookie(
        COOKIE,
        await Sessions(settings, ctx(request).db).open(name, token),
        max_age=TTL_S,
        path="/",
        # Plain http only to this machine itself: behind a TLS proxy uvicorn may see http.
        secure=request.url.scheme == "https" or not is_loopback(request.url.hostname or ""),
        httponly=True,
        samesite="strict",
    )
    return response


async def logout(request: Request) -> Response:
    """Ends the session on the server (every copy), not only in this browser."""
    auth = bool(ctx(request).settings.api_tokens)
    cookie = cookie_of(request.scope.get("headers", []))
    if auth and cookie:
        await Sessions(ctx(request).settings, ctx(request).db).end(cookie)
    response = JSON(Viewer(name=None, admin=not auth, auth=auth))
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def state(request: Request) -> Response:
    """Everything the page shows, for this caller (an owner: its own jobs only)."""
    query = routes.parse(StateQuery, dict(request.query_params))
    viewer = _viewer(request)
    owner = principal(request).owner_filter
    key = (owner, query.range)
    cache = StateCache.of(request)
    async with cache.locks.setdefault(key, asyncio.Lock()):  # pages of one viewer share a read
        cached = cache.states.get(key)
        if cached is None or time.monotonic() - cached[0] > STATE_CACHE_S:
            cached = (time.monotonic(), await _read_state(request, owner, RANGES[query.range]))
            cache.states[key] = cached
    return JSON(cached[1].model_copy(update={"viewer": viewer}))


async def _read_state(request: Request, owner: str | None, bucket_s: int) -> DashboardState:
    db = ctx(request).db
    counts = await views.state_counts(db, owner)
    ages = await dashboard.queue_ages(db, owner)
    buckets, pages, jobs = await dashboard.throughput(db, bucket_s, owner)
    return DashboardState(
        viewer=_viewer(request),
        vocabulary=Vocabulary(statuses=list(Status), lanes=list(Lane), tones=TONES),
        generated_at=datetime.now(UTC),
        counts={s: {lane: counts.get((s, lane), 0) for lane in Lane} for s in Status},
        queue={
            lane: LaneQueue(depth=counts.get((Status.QUEUED, lane), 0), oldest_s=ages.get(lane, 0))
            for lane in Lane
        },
        throughput=Throughput(
            bucket_s=bucket_s,
            buckets=buckets,
            pages_per_s=round(pages / 60, 2),
            jobs_per_min=jobs,
        ),
        running=await dashboard.running(db, owner, MAX_RUNNING),
        failures=await dashboard.failures(db, owner, MAX_FAILURES),
        copies=await copies.listing(db),
    )


E = ErrorCode
HTML = Raw("text/html")
ENDPOINTS = [
    Endpoint("/ui", "GET", page, Op("The operator dashboard (a page)", {200: HTML}, public=True)),
    Endpoint(
        "/ui/static/{name}",
        "GET",
        asset,
        Op(
            "Assets of /ui",
            {200: [Raw("text/javascript"), Raw("text/css")]},
            (ErrorCode.NOT_FOUND,),
            public=True,
        ),
    ),
    Endpoint(
        "/ui/login",
        "POST",
        login,
        Op(
            "Trade an API token (in the body) for the dashboard's session cookie",
            {200: Viewer},
            (E.BAD_REQUEST, E.UNAUTHORIZED, E.TOO_LARGE, E.RATE_LIMITED),
            body={"application/json": Login},
            public=True,
        ),
    ),
    Endpoint(
        "/ui/logout",
        "POST",
        logout,
        Op("End the dashboard's session (clears its cookie)", {200: Viewer}, public=True),
    ),
    Endpoint(
        "/ui/state",
        "GET",
        state,
        Op(
            "What the dashboard shows: jobs by state and lane, queue, throughput, running jobs, "
            "recent failures, copies (an owner sees its own jobs)",
            {200: DashboardState},
            (ErrorCode.BAD_REQUEST,),
            query=StateQuery,
        ),
    ),
]
