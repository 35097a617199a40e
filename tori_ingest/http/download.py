"""GET /jobs/{id}/file: the original bytes, with the same access as the job's result.

A bucket answers with a redirect to a short-lived presigned URL (the bytes never pass
through the API); `?redirect=false`, or a directory store, streams them from here.

The file name is the client's: served as is, `invoice.html` holding a PDF would be saved (or,
sniffed, shown) as HTML. So the type comes from the bytes, never the name, the name's
extension is made to match it, and `nosniff` + `attachment` keep a browser from rendering it.
"""

from __future__ import annotations

import unicodedata
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
# Not purged, yet not in the store: it was stored before TORI_STORAGE_URL changed (or was
# deleted from the store by hand). Saying "purged" would send the operator the wrong way.
MISSING = (
    "the job's file is not in the current store (TORI_STORAGE_URL): it was stored before the "
    "store changed, or removed from it by hand; copy the old store's files to the new one "
    "under the same keys to serve it again"
)
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
# The extensions a download may keep, per type; the first is the one given otherwise.
EXTENSIONS: dict[MediaType, tuple[str, ...]] = {
    MediaType.PDF: (".pdf",),
    MediaType.PNG: (".png",),
    MediaType.JPEG: (".jpg", ".jpeg"),
    MediaType.TIFF: (".tif", ".tiff"),
}
_UNSAFE = frozenset("/\\\"'<>:;|?*%`$")
MAX_STEM = 150


class FileQuery(BaseModel):
    redirect: bool = Field(True, description="false: stream the bytes even from a bucket")


async def get_file(request: Request) -> Response:
    row = await load_job(request)
    if row["purged_at"] is not None:
        raise Refused(ErrorCode.EXPIRED, GONE)
    storage, key = ctx(request).storage, row["storage_key"]
    try:  # asked first, so a redirect never leads to a 404 of the bucket's
        size = await storage.size(key)
    except FileNotFoundError:
        raise Refused(ErrorCode.EXPIRED, MISSING) from None
    if parse(FileQuery, dict(request.query_params)).redirect:
        url = await storage.presigned_url(key, PRESIGNED_TTL)
        if url is not None:
            headers = {"Cache-Control": "no-store", **NOSNIFF}
            return RedirectResponse(url, status_code=307, headers=headers)
    try:
        chunks = storage.read(key)
        first = await anext(chunks, b"")
    except FileNotFoundError:
        raise Refused(ErrorCode.EXPIRED, MISSING) from None
    media = sniff(first) or MediaType.PDF  # stored documents passed the same check
    headers = {
        "Content-Length": str(size),
        "Content-Disposition": attachment(download_name(row["filename"], media)),
        "Cache-Control": "private, no-store",
        **NOSNIFF,
    }
    return StreamingResponse(_prepend(first, chunks), media_type=media, headers=headers)


def download_name(original: str, media: MediaType) -> str:
    """The client's name, made harmless: no path, quote or control/format character (e.g. a
    right-to-left override), and an extension that says what the bytes are (`<stem>.pdf`)."""
    cleaned = "".join(
        "_" if c in _UNSAFE else c
        for c in unicodedata.normalize("NFC", original)
        if not unicodedata.category(c).startswith(("C", "Z")) or c == " "
    )
    base, dot, ext = cleaned.rpartition(".")
    allowed = EXTENSIONS[media]
    if dot and f".{ext.lower()}" in allowed:
        stem, suffix = base, f".{ext}"
    else:  # none, or one that says another type: `invoice.html` → `invoice.pdf`
        stem, suffix = base if dot else cleaned, allowed[0]
    return (stem.strip(" .")[:MAX_STEM].strip(" .") or "document") + suffix


def attachment(name: str) -> str:
    """`attachment` with the name percent-encoded (RFC 6266/5987): nothing in it can end the
    header value or add a parameter."""
    return f"attachment; filename*=UTF-8''{quote(name, safe='')}"


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk
