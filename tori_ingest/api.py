"""The HTTP API (SPEC §4): routes only; streaming, SQL and state live in their own modules."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from tori_ingest import errors, intake, jobs, metrics, openapi, reference, upload, ws
from tori_ingest.errors import ApiError
from tori_ingest.events import EventHub
from tori_ingest.middleware import (
    JSON,
    BearerAuth,
    RequestContext,
    api_error_handler,
    error_response,
    http_error_handler,
)
from tori_ingest.pool import Pool
from tori_ingest.settings import Settings
from tori_ingest.storage import Storage

log = logging.getLogger(__name__)

MAX_LIST_LIMIT = 200
LANES = tuple(jobs.LANE_PRIORITY)
STATUSES = ("queued", "running", *jobs.TERMINAL)


@dataclass
class Context:
    """What the routes need, built once per process by `service`."""

    settings: Settings
    db: asyncpg.Pool
    storage: Storage
    pool: Pool | None = None
    hub: EventHub | None = None


def ctx(request: Request) -> Context:
    return request.app.state.ctx


def parse_job_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(404, errors.NOT_FOUND, "no such job") from None


async def load_job(request: Request) -> asyncpg.Record:
    row = await jobs.get(ctx(request).db, parse_job_id(request.path_params["job_id"]))
    if row is None:
        raise ApiError(404, errors.NOT_FOUND, "no such job")
    return row


MAX_IDEMPOTENCY_KEY = 255


async def create_jobs(request: Request) -> Response:
    """Multipart upload (field `file`, repeatable) or JSON by reference; 202, or 200 on replay."""
    c = ctx(request)
    key = request.headers.get("idempotency-key") or None
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        raise ApiError(
            400, errors.BAD_REQUEST, f"Idempotency-Key is over {MAX_IDEMPOTENCY_KEY} chars"
        )
    reprocess = request.query_params.get("reprocess", "").lower() in ("1", "true", "yes")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        return await _create_by_reference(request, c, key, reprocess)
    form = await upload.read_form(
        content_type, request.stream(), c.storage, c.settings.max_upload_bytes
    )
    created_files: list[str] = []
    try:
        if not form.files:
            raise ApiError(400, errors.BAD_REQUEST, "missing multipart field 'file'")
        lane = _lane(form.fields.get("priority"), "interactive")
        password = _text_field(form.fields.get("password"), "password")
        new_jobs = []
        for f in form.files:
            storage_key, created = await c.storage.commit(f.writer.path, f.writer.sha256)
            if created:
                created_files.append(storage_key)
            new_jobs.append(
                jobs.NewJob(
                    sha256=f.writer.sha256,
                    filename=f.filename,
                    bytes=f.writer.size,
                    storage_key=storage_key,
                    lane=lane,
                    password=password,
                )
            )
        outcome = await intake.submit(
            c.db,
            new_jobs,
            idempotency_key=key,
            request_fingerprint=intake.fingerprint(new_jobs, {}),
            reprocess=reprocess,
        )
    except BaseException:
        await form.discard()
        await _remove_unreferenced(c, created_files)
        raise
    return _accepted(outcome)


async def _remove_unreferenced(c: Context, keys: list[str]) -> None:
    """Undo the files a failed request stored, unless a concurrent request's job now uses one
    (content addressing shares files). If the database cannot say, the file goes."""
    for key in keys:
        try:
            used = await c.db.fetchval(
                "SELECT 1 FROM tori_jobs WHERE storage_key = $1 LIMIT 1", key
            )
        except Exception:
            used = None
        if not used:
            await c.storage.remove(key)


async def _create_by_reference(
    request: Request, c: Context, key: str | None, reprocess: bool
) -> Response:
    body = await read_json(request)
    found = await reference.collect(c.settings.import_dir, body, c.settings.max_upload_bytes)
    lane = _lane(body.get("priority"), "bulk")
    password = _text_field(body.get("password"), "password")
    new_jobs = [
        jobs.NewJob(
            sha256=item.sha256,
            filename=item.relative.rsplit("/", 1)[-1],
            bytes=item.size,
            storage_key=c.storage.import_key(item.relative),
            lane=lane,
            password=password,
        )
        for item in found
    ]
    fingerprint = intake.fingerprint(new_jobs, {"paths": [i.relative for i in found]})
    outcome = await intake.submit(
        c.db, new_jobs, idempotency_key=key, request_fingerprint=fingerprint, reprocess=reprocess
    )
    return _accepted(outcome)


def _text_field(raw: object, name: str) -> str | None:
    """An optional short text field; NUL (which Postgres text cannot hold) is refused."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or "\x00" in raw or len(raw) > 1024:
        raise ApiError(400, errors.BAD_REQUEST, f"{name} must be a string without NUL characters")
    return raw


def _lane(raw: object, default: str) -> str:
    lane = raw or default
    if lane not in LANES:
        raise ApiError(400, errors.BAD_REQUEST, f"priority must be one of {', '.join(LANES)}")
    return str(lane)


def _accepted(outcome: intake.Outcome) -> Response:
    if not outcome.replayed:
        for r in outcome.rows:
            metrics.JOBS_CREATED.labels(lane=r["lane"], deduplicated=str(r["deduplicated"])).inc()
    body = [
        {
            "job_id": str(r["id"]),
            "status": r["status"],
            "deduplicated": r["deduplicated"],
            "links": jobs.links(r["id"]),
        }
        for r in outcome.rows
    ]
    return JSON(body[0] if len(body) == 1 else body, status_code=200 if outcome.replayed else 202)


async def get_job(request: Request) -> Response:
    return JSON(jobs.view(await load_job(request)))


async def cancel_job(request: Request) -> Response:
    """Cancel; a job that already ended is left as it is (200 with its state)."""
    row = await load_job(request)
    cancelled = await jobs.cancel(ctx(request).db, row["id"])
    return JSON(jobs.view(cancelled or await load_job(request)))


async def retry_job(request: Request) -> Response:
    """Re-queue a failed or cancelled job (202); any other state is returned as it is (200)."""
    row = await load_job(request)
    password = None
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await read_json(request)
        password = _text_field(body.get("password"), "password")
    requeued = await jobs.retry(ctx(request).db, row["id"], password)
    if requeued is None:
        return JSON(jobs.view(await load_job(request)))
    return JSON(jobs.view(requeued), status_code=202)


async def read_json(request: Request) -> dict:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise ApiError(400, errors.BAD_REQUEST, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, errors.BAD_REQUEST, "the body must be a JSON object")
    return body


async def get_result(request: Request) -> Response:
    row = await load_job(request)
    if row["status"] != "succeeded":
        raise ApiError(409, errors.NOT_READY, f"the job is {row['status']}; no result yet")
    db = ctx(request).db
    if request.query_params.get("format") == "text":
        text = await jobs.result_text(db, row["id"])
        if text is None:
            raise ApiError(410, errors.EXPIRED, "the result has been purged")
        return PlainTextResponse(text)
    body = await jobs.result_json(db, row["id"])
    if body is None:
        raise ApiError(410, errors.EXPIRED, "the result has been purged")
    return Response(body, media_type="application/json")


async def list_jobs(request: Request) -> Response:
    q = request.query_params
    status = q.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, errors.BAD_REQUEST, f"status must be one of {', '.join(STATUSES)}")
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        raise ApiError(400, errors.BAD_REQUEST, "limit must be an integer") from None
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ApiError(400, errors.BAD_REQUEST, f"limit must be between 1 and {MAX_LIST_LIMIT}")
    lane = q.get("lane") or None
    if lane is not None and lane not in LANES:
        raise ApiError(400, errors.BAD_REQUEST, f"lane must be one of {', '.join(LANES)}")
    after = parse_after(q.get("after"))
    rows = await jobs.list_page(ctx(request).db, status=status, lane=lane, after=after, limit=limit)
    items = [jobs.view(r) for r in rows]
    next_after = items[-1]["job_id"] if len(items) == limit else None
    return JSON({"jobs": items, "next": next_after})


def parse_after(raw: str | None) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(400, errors.BAD_REQUEST, "after must be a job id") from None


async def openapi_json(request: Request) -> Response:
    return JSON(openapi.SPEC)


async def healthz(request: Request) -> Response:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> Response:
    c = ctx(request)
    problems: list[str] = []
    try:
        async with asyncio.timeout(2):
            await c.db.fetchval("SELECT 1")
    except Exception as exc:
        problems.append(f"database unreachable ({type(exc).__name__})")
    if not c.storage.writable():
        problems.append(f"storage not writable ({c.storage.root})")
    if c.pool is not None and not c.pool.warm:
        problems.append("pool not warm (model loading)")
    if problems:
        return error_response(503, errors.UNAVAILABLE, "; ".join(problems))
    return JSON({"status": "ready", "pool": c.pool.size if c.pool else None})


def build_app(context: Context) -> Starlette:
    routes = [
        Route("/jobs", create_jobs, methods=["POST"]),
        Route("/jobs", list_jobs, methods=["GET"]),
        Route("/jobs/{job_id}", get_job, methods=["GET"]),
        Route("/jobs/{job_id}", cancel_job, methods=["DELETE"]),
        Route("/jobs/{job_id}/retry", retry_job, methods=["POST"]),
        Route("/jobs/{job_id}/result", get_result, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/metrics", metrics.metrics_endpoint, methods=["GET"]),
        WebSocketRoute("/ws", ws.ws_many),
        WebSocketRoute("/ws/jobs/{job_id}", ws.ws_one),
    ]
    middleware = [Middleware(RequestContext), Middleware(metrics.RequestMetrics)]
    if context.settings.cors_origins:  # outside auth: a preflight carries no token
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=context.settings.cors_origins,
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
                expose_headers=["X-Request-ID"],
            )
        )
    return _starlette(context, routes, middleware)


def build_probe_app(context: Context) -> Starlette:
    """What a worker-only process serves on TORI_METRICS_PORT: metrics and health probes."""
    routes = [
        Route("/metrics", metrics.metrics_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    return _starlette(context, routes, [Middleware(RequestContext)])


def _starlette(context: Context, routes: list, middleware: list[Middleware]) -> Starlette:
    """The app around `routes`: auth innermost (after CORS), the error envelope everywhere."""
    if context.settings.api_tokens:
        middleware = [*middleware, Middleware(BearerAuth, tokens=context.settings.api_tokens)]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={ApiError: api_error_handler, HTTPException: http_error_handler},
    )
    app.state.ctx = context
    return app
