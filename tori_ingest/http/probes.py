"""Health, readiness, metrics and the OpenAPI document: the routes operators and tools use."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from tori_ingest.core.errors import Unavailable
from tori_ingest.core.models import Health, Ready
from tori_ingest.http.context import Context, ctx
from tori_ingest.http.middleware import JSON
from tori_ingest.store.db import ping


async def healthz(request: Request) -> Response:
    return JSON(Health())


async def readyz(request: Request) -> Response:
    """503 naming what is not ready: database, storage, or (where a worker runs) the pool."""
    c = ctx(request)
    problems = await not_ready(c)
    if problems:
        raise Unavailable("service", "; ".join(problems))
    return JSON(Ready(pool=c.pool.size if c.pool else None))


async def not_ready(c: Context) -> list[str]:
    """What keeps this process from being ready (empty: ready); /readyz and `tori_ready`."""
    problems: list[str] = []
    try:
        async with asyncio.timeout(2):
            await ping(c.db)
    except Exception as exc:
        problems.append(f"database unreachable ({type(exc).__name__})")
    if storage_problem := await c.storage.problem():
        problems.append(storage_problem)
    if c.pool is not None and not c.pool.warm:
        problems.append("pool not warm (model loading)")
    return problems


async def openapi_json(request: Request) -> Response:
    return JSON(request.app.state.openapi)
