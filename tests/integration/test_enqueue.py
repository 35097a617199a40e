"""SPEC §3: a job row and its queue entry exist together or not at all."""

from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest

from tori_ingest.core.vocab import Lane
from tori_ingest.store import jobs

NEW = jobs.NewJob(sha256="ab" * 32, filename="a.pdf", bytes=10, storage_key="ab/x.pdf")


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(db_url)
    try:
        yield connection
    finally:
        await connection.close()


async def counts(conn: asyncpg.Connection) -> tuple[int, int]:
    ours = await conn.fetchval("SELECT count(*) FROM tori_jobs")
    queued = await conn.fetchval("SELECT count(*) FROM procrastinate_jobs")
    return ours, queued


async def test_create_inserts_row_and_queue_entry_together(conn: asyncpg.Connection) -> None:
    before = await counts(conn)
    row = await jobs.create(conn, NEW)
    assert await counts(conn) == (before[0] + 1, before[1] + 1)
    queued = await conn.fetchrow(
        "SELECT task_name, queue_name, priority, args, status FROM procrastinate_jobs"
        " WHERE id = $1",
        row["procrastinate_job_id"],
    )
    assert queued["task_name"] == jobs.TASK_NAME
    assert queued["queue_name"] == jobs.QUEUE
    assert queued["priority"] == Lane.INTERACTIVE.priority
    assert queued["status"] == "todo"
    assert orjson.loads(queued["args"]) == {"job_id": str(row["id"])}
    assert row["status"] == "queued"


async def test_failed_insert_leaves_no_queue_entry(conn: asyncpg.Connection) -> None:
    before = await counts(conn)
    # The row insert fails (Postgres text cannot hold NUL) after the defer ran.
    with pytest.raises(asyncpg.exceptions.CharacterNotInRepertoireError):
        await jobs.create(conn, jobs.NewJob(**{**NEW.__dict__, "filename": "a\x00.pdf"}))
    assert await counts(conn) == before


async def test_rolled_back_transaction_leaves_neither(conn: asyncpg.Connection) -> None:
    before = await counts(conn)
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await jobs.create(conn, NEW)
            await jobs.create(conn, NEW)
            raise RuntimeError("e.g. the second upload failed")
    assert await counts(conn) == before


async def test_bulk_lane_gets_lower_priority(conn: asyncpg.Connection) -> None:
    row = await jobs.create(conn, jobs.NewJob(**{**NEW.__dict__, "lane": "bulk"}))
    priority = await conn.fetchval(
        "SELECT priority FROM procrastinate_jobs WHERE id = $1", row["procrastinate_job_id"]
    )
    assert priority < Lane.INTERACTIVE.priority
