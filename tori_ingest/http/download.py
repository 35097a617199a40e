"""GET /jobs/{id}/file: the original bytes, with the same access as the job's result.

A bucket answers with a redirect to a short-lived presigned URL (the bytes never pass
through the API); `?redirect=false`, or a directory store, streams them from here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from tori_ingest.core.errors import Refused
from tori_ingest.core.formats import MediaType, sniff
from tori_ingest.core.vocab import ErrorCode
from tori_ingest.http.context import ctx
from tori_ingest.http.routes import load_job, parse

PRESIGNED_TTL = timedelta(minutes=5)
GONE = "the job's file is no longer stored (purged after TORI_RETENTION_DAYS)"


class FileQuery(BaseModel):
    redirect: bool = Field(True, description="false: stream the bytes even from a bucket")


async def get_file(request: Request) -> Response:
    row = await load_job(request)
    if row["purged_at"] is not None:
        raise Refused(ErrorCode.EXPIRED, GONE)
    storage, key = ctx(request).storage, row["storage_key"]
    if parse(FileQuery, dict(request.query_params)).redirect:
        url = await storage.presigned_url(key, PRESIGNED_TTL)
        if url is not None:
            return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    try:
        size = await storage.size(key)
        chunks = storage.read(key)
        first = await anext(chunks, b"")
    except FileNotFoundError:
        raise Refused(ErrorCode.EXPIRED, GONE) from None
    name = quote(row["filename"], safe="")
    headers = {
        "Content-Length": str(size),
        "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
        "Cache-Control": "private, no-store",
    }
    media = sniff(first) or MediaType.PDF  # stored documents passed the same check
    return StreamingResponse(_prepend(first, chunks), media_type=media, headers=headers)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk
