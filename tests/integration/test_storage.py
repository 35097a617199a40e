"""The store's contract with jobs in Postgres: undo waits, a vanished shared file is put back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.helpers import STORE_PDF as PDF
from tests.helpers import Backend, put
from tori_ingest.store import files, jobs
from tori_ingest.store.db import create_pool


@pytest.fixture(scope="module")
async def db(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_url, max_size=4)
    yield pool
    await pool.close()


async def test_undo_waits_for_a_job_being_inserted_for_the_same_file(
    backend: Backend, db: asyncpg.Pool
) -> None:
    store = backend.storage
    key, created = await store.commit(await put(store, PDF), "34" * 32)
    assert created
    async with db.acquire() as conn, conn.transaction():  # request A: inserting its job
        await files.lock_keys(conn, [key])
        # request B failed and undoes "its" file meanwhile: it must wait for A's answer
        undo = asyncio.create_task(files.remove_if_unused(db, store, key))
        done, _ = await asyncio.wait({undo}, timeout=0.3)
        assert not done and key in backend.keys()
        await jobs.create(conn, jobs.NewJob("34" * 32, "a.pdf", len(PDF), key))
    assert await undo is False
    assert key in backend.keys()


async def test_a_vanished_shared_file_is_put_back_from_the_kept_copy(
    backend: Backend, db: asyncpg.Pool
) -> None:
    store = backend.storage
    key, _ = await store.commit(await put(store, PDF), "56" * 32)
    second = await put(store, PDF)
    assert await store.commit(second, "56" * 32) == (key, False)  # kept: already stored
    await store.remove(key)  # a concurrent undo won the race
    async with db.acquire() as conn, conn.transaction():
        await files.ensure_stored(conn, store, [(key, second)])
    assert b"".join([c async for c in store.read(key)]) == PDF
