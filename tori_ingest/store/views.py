"""Reading jobs: one row, a page of rows, counts, the stored result, and the public view.

Pure reads; every state change lives in `jobs`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg

from tori_ingest.core.models import Counts, DocumentRef, ErrorInfo, JobView, Links, Summary
from tori_ingest.core.vocab import Lane, Status
from tori_ingest.store.jobs import JOB_COLUMNS


async def get(
    db: asyncpg.Pool | asyncpg.Connection, job_id: uuid.UUID, owner: str | None = None
) -> asyncpg.Record | None:
    """One job; with `owner`, only if that owner's (another's job does not exist for them)."""
    return await db.fetchrow(
        f"SELECT {JOB_COLUMNS} FROM tori_jobs WHERE id = $1 AND ($2::text IS NULL OR owner = $2)",
        job_id,
        owner,
    )


async def get_many(
    db: asyncpg.Pool | asyncpg.Connection, ids: Sequence[uuid.UUID]
) -> list[asyncpg.Record]:
    """The rows of `ids`, in that order (missing ones left out)."""
    rows = await db.fetch(f"SELECT {JOB_COLUMNS} FROM tori_jobs WHERE id = ANY($1::uuid[])", ids)
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


async def events(db: asyncpg.Pool, ids: Sequence[uuid.UUID], owner: str | None = None) -> list[str]:
    """Each job's live state as JSON, exactly as its next NOTIFY would carry it (one SQL
    function makes both); with `owner`, only that owner's jobs."""
    rows = await db.fetch(
        "SELECT tori_job_event(j)::text AS event FROM tori_jobs j"
        " WHERE id = ANY($1::uuid[]) AND ($2::text IS NULL OR owner = $2)",
        ids,
        owner,
    )
    return [r["event"] for r in rows]


async def list_page(
    db: asyncpg.Pool,
    *,
    status: Status | None,
    lane: Lane | None,
    after: uuid.UUID | None,
    limit: int,
    owner: str | None = None,
    owner_ref: str | None = None,
) -> list[asyncpg.Record]:
    """Newest first; `after` is the last id of the previous page (keyset pagination).
    Erased jobs are not listed; `owner` limits to one owner's jobs.

    The `after` anchor is looked up under the same owner: another owner's job id gives the
    same (empty) page as an id that does not exist, so the listing is no existence oracle.
    The caller's own erased job still anchors (its owner already gets 410 for it, and paging
    on must not stop because the last job of the previous page was erased meanwhile)."""
    return list(
        await db.fetch(
            f"""SELECT {JOB_COLUMNS} FROM tori_jobs
            WHERE ($1::text IS NULL OR status = $1)
              AND ($4::text IS NULL OR lane = $4)
              AND ($5::text IS NULL OR owner = $5)
              AND ($6::text IS NULL OR owner_ref = $6)
              AND erased_at IS NULL
              AND ($2::uuid IS NULL OR (created_at, id) <
                   (SELECT created_at, id FROM tori_jobs
                    WHERE id = $2 AND ($5::text IS NULL OR owner = $5)))
            ORDER BY created_at DESC, id DESC LIMIT $3""",
            status,
            after,
            limit,
            lane,
            owner,
            owner_ref,
        )
    )


_ITEMS = """
SELECT p.n, {what} FROM tori_results r,
       jsonb_array_elements(r.result -> $2::text) WITH ORDINALITY AS p(item, n)
WHERE r.job_id = $1 AND p.n > $3 ORDER BY p.n LIMIT $4
"""
ITEMS_PER_FETCH = 200
# The summary first, in this order (jsonb keeps keys by length, so `stats` would come first
# and `job_id` after the chunks), then the other small fields; `json` keeps order. The large
# arrays follow, each streamed a batch at a time.
_SUMMARY = ("job_id", "document", "stats", "warnings", "timings_ms", "pipeline")
ARRAYS = ("blocks", "chunks", "pages")
_HEAD = f"""
SELECT CASE WHEN rest = '{{}}'::jsonb THEN summary::text
            ELSE left(summary::text, -1) || ', ' || right(rest::text, -1) END,
       ARRAY(SELECT k FROM unnest($2::text[]) k WHERE result ? k)
FROM (SELECT result, json_build_object(
                 {", ".join(f"'{k}', result -> '{k}'" for k in _SUMMARY)}) AS summary,
             result - $2::text[] - {" - ".join(f"'{k}'" for k in _SUMMARY)} AS rest
      FROM tori_results WHERE job_id = $1) r
"""


async def result_stream(
    db: asyncpg.Pool, job_id: uuid.UUID, *, text: bool = False
) -> AsyncIterator[bytes] | None:
    """The stored result, streamed a batch of items at a time (None when purged or missing).

    JSON: the summary first (`job_id`, `document`, `stats`…: what `curl | head` reads), then
    the other fields, then `blocks`, `chunks` and `pages`.
    Text: the cleaned pages separated by form feeds, like pdftotext. Memory stays bounded by
    ITEMS_PER_FETCH items, however long the document. Each batch is its own query: no
    connection is held while the client reads, so a client that stalls or hangs up mid-body
    (whose generator may never be closed) cannot keep a database connection.
    """
    found = await db.fetchrow(_HEAD, job_id, list(ARRAYS))
    if found is None:
        return None
    head, present = found[0], found[1]

    async def body() -> AsyncIterator[bytes]:
        if text:
            async for batch in result_items(db, job_id, "pages", "p.item ->> 'text'"):
                yield b"\f".join((page or "").encode() for page in batch)
            return
        opened = head[:-1].encode()
        for key in present:
            opened += (b"," if opened != b"{" else b"") + f'"{key}":['.encode()
            yield opened
            opened, first = b"", True
            async for batch in result_items(db, job_id, key):
                yield (b"" if first else b",") + b",".join(item.encode() for item in batch)
                first = False
            opened = b"]"
        yield opened + b"}"

    return body()


async def result_arrays(db: asyncpg.Pool, job_id: uuid.UUID) -> list[str] | None:
    """Which of `ARRAYS` the stored result has (results stored before blocks have none);
    None when it is purged or missing."""
    found: list[str] | None = await db.fetchval(
        "SELECT ARRAY(SELECT k FROM unnest($2::text[]) k WHERE result ? k)"
        " FROM tori_results WHERE job_id = $1",
        job_id,
        list(ARRAYS),
    )
    return found


async def result_items(
    db: asyncpg.Pool, job_id: uuid.UUID, key: str, what: str = "p.item::text"
) -> AsyncIterator[list[str]]:
    """The items of one of the result's arrays (`ARRAYS`), a batch per query."""
    query = _ITEMS.format(what=what)
    last = 0
    while batch := await db.fetch(query, job_id, key, last, ITEMS_PER_FETCH):
        yield [item for _, item in batch]
        last = batch[-1][0]


async def state_counts(
    db: asyncpg.Pool, owner: str | None = None
) -> dict[tuple[Status, Lane], int]:
    """Number of jobs per (status, lane); with `owner`, of that owner's jobs only. `/metrics`
    and the dashboard both count with this, so their numbers agree."""
    rows = await db.fetch(
        "SELECT status, lane, count(*) AS n FROM tori_jobs"
        " WHERE $1::text IS NULL OR owner = $1 GROUP BY 1, 2",
        owner,
    )
    return {(Status(r["status"]), Lane(r["lane"])): r["n"] for r in rows}


async def counts(db: asyncpg.Pool) -> Counts:
    """Jobs by state and by lane (for `status`)."""
    by_status: dict[Status, int] = {}
    by_lane: dict[Lane, dict[Status, int]] = {}
    for (status, lane), n in (await state_counts(db)).items():
        by_status[status] = by_status.get(status, 0) + n
        by_lane.setdefault(lane, {})[status] = n
    return Counts(jobs=by_status, lanes=by_lane)


def view(row: asyncpg.Record) -> JobView:
    """The public state of a job (GET /jobs/{id})."""
    error = (
        ErrorInfo(code=row["error_code"], message=row["error_message"] or "")
        if row["error_code"]
        else None
    )
    summary = row["summary"]
    return JobView(
        job_id=str(row["id"]),
        status=row["status"],
        lane=row["lane"],
        owner_ref=row["owner_ref"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        attempts=row["attempts"],
        pages_done=row["pages_done"],
        pages_total=row["pages_total"],
        # An erased row has no hash or size left (sql/013): neutral values keep the shape.
        document=DocumentRef(
            sha256=row["sha256"] or "", filename=row["filename"], bytes=row["bytes"] or 0
        ),
        deduplicated=row["deduplicated"],
        error=error,
        result=Summary.model_validate_json(summary) if summary is not None else None,
        links=Links.of(row["id"]),
    )
