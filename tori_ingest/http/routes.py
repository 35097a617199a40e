"""The job routes: submit, list, read, cancel, retry, result. Only routing and shaping here;
streaming, SQL and state live in their own modules."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import asyncpg
import orjson
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tori_ingest.core import metrics
from tori_ingest.core.errors import Refused
from tori_ingest.core.models import (
    DEFAULT_LIST_LIMIT,
    MAX_IDEMPOTENCY_KEY,
    MAX_LIST_LIMIT,
    MAX_TEXT_FIELD,
    Accepted,
    ByReference,
    Erased,
    JobList,
    Links,
    PartView,
    RetryRequest,
    SplitJobView,
)
from tori_ingest.core.vocab import ErrorCode, Lane, OcrMode, Status
from tori_ingest.http import callbacks, upload
from tori_ingest.http.auth import Tickets, principal
from tori_ingest.http.context import ctx
from tori_ingest.http.middleware import JSON
from tori_ingest.pipeline import markdown
from tori_ingest.store import erase, intake, jobs, parts, reference, views

NO_SUCH_JOB = "no such job"
MAX_JSON_BODY = 256 * 1024  # 1,000 paths of 200 characters fit
M = TypeVar("M", bound=BaseModel)


class ListQuery(BaseModel):
    """GET /jobs query parameters."""

    status: Status | None = None
    lane: Lane | None = None
    after: uuid.UUID | None = Field(None, description="the `next` of the previous page")
    limit: int = Field(DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT)
    owner_ref: str | None = Field(None, description="only jobs the app tagged with this")


class CancelQuery(BaseModel):
    erase: bool = Field(False, description="also delete the file, the result and the key")


class ResultQuery(BaseModel):
    format: str = Field(
        "json",
        pattern="^(json|text|markdown)$",
        description="json: the result; text: the cleaned pages (form feeds between them); "
        "markdown: headings, lists, tables and paragraphs in reading order",
    )


class SubmitQuery(BaseModel):
    reprocess: bool = Field(False, description="run again even if this PDF has a result")


async def read_body(request: Request, limit: int = MAX_JSON_BODY) -> bytes:
    """A JSON body, refused (413) as soon as it passes `limit`, never read whole first."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(ErrorCode.TOO_LARGE, f"the JSON body is larger than {limit >> 10} KiB")
    return bytes(body)


def parse(model: type[M], data: bytes | dict[str, str]) -> M:
    """Validate a request's query (empty values = unset) or JSON body; a bad one is 400."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data or b"{}")
        if any("\x00" in v for v in data.values()):  # Postgres text cannot hold NUL
            raise Refused(ErrorCode.BAD_REQUEST, "query values must not contain NUL")
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
    """The job of the path, if the caller may see it (another owner's job is a 404, never a
    403: no existence oracle); an erased job is 410."""
    job_id = parse_job_id(request.path_params["job_id"])
    row = await views.get(ctx(request).db, job_id, principal(request).owner_filter)
    if row is None:
        raise Refused(ErrorCode.NOT_FOUND, NO_SUCH_JOB)
    if row["erased_at"] is not None:
        raise Refused(ErrorCode.EXPIRED, "the job was erased")
    return row


async def create_jobs(request: Request) -> Response:
    """Multipart upload (field `file`, repeatable) or JSON by reference; 202, or 200 on replay."""
    c = ctx(request)
    key = request.headers.get("idempotency-key") or None
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        raise Refused(ErrorCode.BAD_REQUEST, f"Idempotency-Key is over {MAX_IDEMPOTENCY_KEY} chars")
    reprocess = parse(SubmitQuery, dict(request.query_params)).reprocess
    if request.headers.get("content-type", "").startswith("application/json"):
        body = parse(ByReference, await read_body(request))
        callback_url = callbacks.callback_for(c.settings, body.callback_url)
        lane, password = body.priority, _text_field(body.password, "password")
        owner_ref = _text_field(body.owner_ref, "owner_ref")
        ocr = body.ocr
        await c.admission.check(
            c.db,
            body.priority,
            len(body.paths or ()) + (body.path is not None),
            principal(request).name,
        )
        # every check that can refuse comes before the copy: nothing to undo after it
        found = await reference.collect(c.imports, body, c.settings.max_upload_bytes, c.storage)
        incoming = [intake.Incoming(f.filename, f.sha256, f.size, f.temp) for f in found]
        extra: dict[str, object] = {"paths": [f.relative for f in found]}
    else:
        form = await upload.read_form(
            request.headers.get("content-type", ""),
            request.stream(),
            c.storage,
            c.settings.max_upload_bytes,
        )
        incoming = [
            intake.Incoming(f.filename, f.writer.sha256, f.writer.size, f.writer.temp)
            for f in form.files
        ]
        try:
            if not incoming:
                raise Refused(ErrorCode.BAD_REQUEST, "missing multipart field 'file'")
            lane = _lane(form.fields.get("priority"), Lane.INTERACTIVE)
            password = _text_field(form.fields.get("password"), "password")
            owner_ref = _text_field(form.fields.get("owner_ref"), "owner_ref")
            ocr = _ocr_mode(form.fields.get("ocr"))
            callback_url = callbacks.callback_for(c.settings, form.fields.get("callback_url"))
            await c.admission.check(c.db, lane, len(incoming), principal(request).name)
        except BaseException:
            await form.discard()
            raise
        extra = {}
    who = principal(request)
    meta = intake.JobMeta(lane, password, who.name, owner_ref, callback_url, ocr)
    if callback_url != c.settings.tori_webhook_url:  # a replay with another callback differs
        extra["callback_url"] = callback_url
    if ocr is not None:  # so is one with another OCR mode
        extra["ocr"] = ocr
    outcome = await intake.accept(
        c.db, c.storage, incoming, meta, key, reprocess, {**extra, "owner_ref": owner_ref}
    )
    return _accepted(outcome, c.tickets)


def _text_field(raw: str | None, name: str) -> str | None:
    """An optional short text field; NUL (which Postgres text cannot hold) is refused."""
    if raw is None or raw == "":
        return None
    if "\x00" in raw or len(raw) > MAX_TEXT_FIELD:
        raise Refused(ErrorCode.BAD_REQUEST, f"{name} must be a string without NUL characters")
    return raw


def _ocr_mode(raw: str | None) -> OcrMode | None:
    if not raw:
        return None
    try:
        return OcrMode(raw)
    except ValueError:
        choices = ", ".join(OcrMode)
        raise Refused(ErrorCode.BAD_REQUEST, f"ocr must be one of {choices}") from None


def _lane(raw: str | None, default: Lane) -> Lane:
    try:
        return Lane(raw or default)
    except ValueError:
        choices = ", ".join(Lane)
        raise Refused(ErrorCode.BAD_REQUEST, f"priority must be one of {choices}") from None


def _accepted(outcome: intake.Outcome, tickets: Tickets | None) -> Response:
    """202 (200 on a replay): one object for one file, a list for several. With auth on, each
    carries a ticket, and `links.ws` a URL a browser can open without any token."""
    if not outcome.replayed:
        for r in outcome.rows:
            metrics.JOBS_CREATED.labels(lane=r["lane"], deduplicated=str(r["deduplicated"])).inc()
    body = []
    for r in outcome.rows:
        ticket = tickets.issue(r["id"], r["owner"]) if tickets is not None else None
        links = Links.of(r["id"])
        if ticket:
            links = links.model_copy(update={"ws": f"{links.ws}?ticket={ticket}"})
        body.append(
            Accepted(
                job_id=str(r["id"]),
                status=r["status"],
                deduplicated=r["deduplicated"],
                pages_total=r["pages_total"],
                links=links,
                ticket=ticket,
            )
        )
    status = 200 if outcome.replayed else 202
    return JSON(body[0] if len(body) == 1 else body, status_code=status)


async def get_job(request: Request) -> Response:
    """The job's state; a running split job also lists its parts (absent otherwise)."""
    row = await load_job(request)
    view = views.view(row)
    found = (
        await parts.listing(ctx(request).db, row["id"]) if row["status"] == Status.RUNNING else []
    )
    if found:
        return JSON(SplitJobView(**dict(view), parts=[PartView(**p) for p in found]))
    return JSON(view)


async def get_deliveries(request: Request) -> Response:
    """The job's webhook deliveries and their tries (same access as the job itself)."""
    return await callbacks.list_deliveries(request, (await load_job(request))["id"])


async def cancel_job(request: Request) -> Response:
    """Cancel; a job that already ended is left as it is (200 with its state).
    `?erase=true`: also take the document back (file, result, idempotency key)."""
    row = await load_job(request)
    c = ctx(request)
    if parse(CancelQuery, dict(request.query_params)).erase:
        await erase.take_back(c.db, c.storage, row["id"])
        return JSON(Erased(job_id=str(row["id"])))
    cancelled = await jobs.cancel(c.db, row["id"])
    return JSON(views.view(cancelled or await load_job(request)))


async def retry_job(request: Request) -> Response:
    """Re-queue a failed or cancelled job (202); any other state is returned as it is (200)."""
    row = await load_job(request)
    if row["purged_at"] is not None:
        raise Refused(ErrorCode.EXPIRED, "the job's file and result were purged; submit it again")
    password = None
    if request.headers.get("content-type", "").startswith("application/json"):
        body = parse(RetryRequest, await read_body(request))
        password = _text_field(body.password, "password")
    requeued = await jobs.retry(ctx(request).db, row["id"], password)
    if requeued is None:
        return JSON(views.view(await load_job(request)))
    return JSON(views.view(requeued), status_code=202)


async def get_result(request: Request) -> Response:
    query = parse(ResultQuery, dict(request.query_params))
    row = await load_job(request)
    if row["status"] != Status.SUCCEEDED:
        if Status(row["status"]).terminal:
            why = f"the job {row['status']} ({row['error_code']}); it has no result"
        else:
            why = f"the job is {row['status']}; no result yet"
        raise Refused(ErrorCode.NOT_READY, why)
    if query.format == "markdown":
        arrays = await views.result_arrays(ctx(request).db, row["id"])
        if arrays is None:
            raise Refused(ErrorCode.EXPIRED, "the result has been purged")
        markdown = _markdown(ctx(request).db, row["id"], with_blocks="blocks" in arrays)
        return StreamingResponse(markdown, media_type="text/markdown; charset=utf-8")
    as_text = query.format == "text"
    chunks = await views.result_stream(ctx(request).db, row["id"], text=as_text)
    if chunks is None:
        raise Refused(ErrorCode.EXPIRED, "the result has been purged")
    media = "text/plain; charset=utf-8" if as_text else "application/json"
    return StreamingResponse(chunks, media_type=media)


async def _markdown(
    db: asyncpg.Pool, job_id: uuid.UUID, *, with_blocks: bool
) -> AsyncIterator[str]:
    """The result's blocks as Markdown (read a batch per query, rendered once: a heading's
    level depends on whether the document has a title). A result stored before blocks
    existed reads as its pages' paragraphs."""
    blocks: list[dict[str, Any]] = []
    if with_blocks:
        async for batch in views.result_items(db, job_id, "blocks"):
            blocks += [orjson.loads(item) for item in batch]
    else:
        async for batch in views.result_items(db, job_id, "pages", "p.item::text"):
            for page in map(orjson.loads, batch):
                blocks += [
                    {"type": "paragraph", "text": part, "page": page["number"]}
                    for part in page["text"].split("\n\n")
                    if part.strip()
                ]
    yield markdown.to_markdown(blocks)


async def list_jobs(request: Request) -> Response:
    q = parse(ListQuery, dict(request.query_params))
    rows = await views.list_page(
        ctx(request).db,
        status=q.status,
        lane=q.lane,
        after=q.after,
        limit=q.limit,
        owner=principal(request).owner_filter,
        owner_ref=q.owner_ref,
    )
    items = [views.view(r) for r in rows]
    return JSON(JobList(jobs=items, next=items[-1].job_id if len(items) == q.limit else None))
