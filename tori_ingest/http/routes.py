"""The job routes: submit, list, read, cancel, retry, result. Only routing and shaping here;
streaming, SQL and state live in their own modules."""

from __future__ import annotations

import uuid
from typing import TypeVar

import asyncpg
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from tori_ingest.core import metrics
from tori_ingest.core.errors import Refused
from tori_ingest.core.models import (
    DEFAULT_LIST_LIMIT,
    MAX_IDEMPOTENCY_KEY,
    MAX_LIST_LIMIT,
    MAX_TEXT_FIELD,
    Accepted,
    ByReference,
    JobList,
    Links,
    RetryRequest,
)
from tori_ingest.core.vocab import ErrorCode, Lane, Status
from tori_ingest.http import upload
from tori_ingest.http.context import Context, ctx
from tori_ingest.http.middleware import JSON
from tori_ingest.store import intake, jobs, reference

NO_SUCH_JOB = "no such job"
M = TypeVar("M", bound=BaseModel)


class ListQuery(BaseModel):
    """GET /jobs query parameters."""

    status: Status | None = None
    lane: Lane | None = None
    after: uuid.UUID | None = Field(None, description="the `next` of the previous page")
    limit: int = Field(DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT)


class ResultQuery(BaseModel):
    format: str = Field("json", pattern="^(json|text)$")


class SubmitQuery(BaseModel):
    reprocess: bool = Field(False, description="run again even if this PDF has a result")


def parse(model: type[M], data: bytes | dict[str, str]) -> M:
    """Validate a request's query (empty values = unset) or JSON body; a bad one is 400."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data or b"{}")
        return model.model_validate({k: v for k, v in data.items() if v != ""})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise Refused(ErrorCode.BAD_REQUEST, f"{where}: {first['msg']}") from None


def parse_job_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Refused(ErrorCode.NOT_FOUND, NO_SUCH_JOB) from None


async def load_job(request: Request) -> asyncpg.Record:
    row = await jobs.get(ctx(request).db, parse_job_id(request.path_params["job_id"]))
    if row is None:
        raise Refused(ErrorCode.NOT_FOUND, NO_SUCH_JOB)
    return row


async def create_jobs(request: Request) -> Response:
    """Multipart upload (field `file`, repeatable) or JSON by reference; 202, or 200 on replay."""
    c = ctx(request)
    key = request.headers.get("idempotency-key") or None
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        raise Refused(ErrorCode.BAD_REQUEST, f"Idempotency-Key is over {MAX_IDEMPOTENCY_KEY} chars")
    reprocess = parse(SubmitQuery, dict(request.query_params)).reprocess
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        return await _create_by_reference(request, c, key, reprocess)
    form = await upload.read_form(
        content_type, request.stream(), c.storage, c.settings.max_upload_bytes
    )
    created_files: list[str] = []
    try:
        if not form.files:
            raise Refused(ErrorCode.BAD_REQUEST, "missing multipart field 'file'")
        lane = _lane(form.fields.get("priority"), Lane.INTERACTIVE)
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
            used = await jobs.is_stored(c.db, key)
        except Exception:
            used = False
        if not used:
            await c.storage.remove(key)


async def _create_by_reference(
    request: Request, c: Context, key: str | None, reprocess: bool
) -> Response:
    body = parse(ByReference, await request.body())
    found = await reference.collect(c.settings.import_dir, body, c.settings.max_upload_bytes)
    new_jobs = [
        jobs.NewJob(
            sha256=item.sha256,
            filename=item.relative.rsplit("/", 1)[-1],
            bytes=item.size,
            storage_key=c.storage.import_key(item.relative),
            lane=body.priority,
            password=_text_field(body.password, "password"),
        )
        for item in found
    ]
    fingerprint = intake.fingerprint(new_jobs, {"paths": [i.relative for i in found]})
    outcome = await intake.submit(
        c.db, new_jobs, idempotency_key=key, request_fingerprint=fingerprint, reprocess=reprocess
    )
    return _accepted(outcome)


def _text_field(raw: str | None, name: str) -> str | None:
    """An optional short text field; NUL (which Postgres text cannot hold) is refused."""
    if raw is None or raw == "":
        return None
    if "\x00" in raw or len(raw) > MAX_TEXT_FIELD:
        raise Refused(ErrorCode.BAD_REQUEST, f"{name} must be a string without NUL characters")
    return raw


def _lane(raw: str | None, default: Lane) -> Lane:
    try:
        return Lane(raw or default)
    except ValueError:
        choices = ", ".join(Lane)
        raise Refused(ErrorCode.BAD_REQUEST, f"priority must be one of {choices}") from None


def _accepted(outcome: intake.Outcome) -> Response:
    if not outcome.replayed:
        for r in outcome.rows:
            metrics.JOBS_CREATED.labels(lane=r["lane"], deduplicated=str(r["deduplicated"])).inc()
    body = [
        Accepted(
            job_id=str(r["id"]),
            status=r["status"],
            deduplicated=r["deduplicated"],
            links=Links.of(r["id"]),
        )
        for r in outcome.rows
    ]
    status = 200 if outcome.replayed else 202
    return JSON(body[0] if len(body) == 1 else body, status_code=status)


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
        body = parse(RetryRequest, await request.body())
        password = _text_field(body.password, "password")
    requeued = await jobs.retry(ctx(request).db, row["id"], password)
    if requeued is None:
        return JSON(jobs.view(await load_job(request)))
    return JSON(jobs.view(requeued), status_code=202)


async def get_result(request: Request) -> Response:
    query = parse(ResultQuery, dict(request.query_params))
    row = await load_job(request)
    if row["status"] != Status.SUCCEEDED:
        raise Refused(ErrorCode.NOT_READY, f"the job is {row['status']}; no result yet")
    db = ctx(request).db
    if query.format == "text":
        text = await jobs.result_text(db, row["id"])
        if text is None:
            raise Refused(ErrorCode.EXPIRED, "the result has been purged")
        return PlainTextResponse(text)
    body = await jobs.result_json(db, row["id"])
    if body is None:
        raise Refused(ErrorCode.EXPIRED, "the result has been purged")
    return Response(body, media_type="application/json")


async def list_jobs(request: Request) -> Response:
    q = parse(ListQuery, dict(request.query_params))
    rows = await jobs.list_page(
        ctx(request).db, status=q.status, lane=q.lane, after=q.after, limit=q.limit
    )
    items = [jobs.view(r) for r in rows]
    return JSON(JobList(jobs=items, next=items[-1].job_id if len(items) == q.limit else None))
