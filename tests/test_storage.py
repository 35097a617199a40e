"""The store's contract, held by both backends: a directory and a bucket on a real S3 server.

Every test runs twice (`store` is parametrised); bucket contents are read from moto
directly, never through the code under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import S3
from tori_ingest.core.errors import StorageUnavailable
from tori_ingest.core.settings import Settings
from tori_ingest.store import files, jobs
from tori_ingest.store.backend import Storage, key_for, open_storage
from tori_ingest.store.bucket import HELD_BUDGET, SMALL_BYTES, BucketStorage
from tori_ingest.store.db import create_pool

PDF = b"%PDF-1.4\n" + b"x" * 100


@pytest.fixture(scope="module")
async def db(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_url, max_size=4)
    yield pool
    await pool.close()


class Backend:
    """A fresh store plus a way to list what it holds, for one test."""

    def __init__(
        self, storage: Storage, listing: object, s3: S3 | None = None, bucket: str = ""
    ) -> None:
        self.storage = storage
        self._listing = listing
        self.s3, self.bucket = s3, bucket

    def keys(self) -> list[str]:
        """What the store holds: files or objects, and small uploads a bucket store keeps in
        memory until their jobs are in (instead of a temp object)."""
        held = list(getattr(self.storage, "held", {}))
        return sorted([*self._listing(), *held])  # type: ignore[misc]


@pytest.fixture(params=["directory", "bucket"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "directory":
        root = tmp_path / "files"
        storage = open_storage(Settings.load({"TORI_DATA_DIR": str(tmp_path)}))

        def listing() -> list[str]:
            return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]

        return Backend(storage, listing)
    s3: S3 = request.getfixturevalue("s3")
    bucket = s3.new_bucket()
    env = s3.env(f"s3://{bucket}/docs", TORI_DATA_DIR=str(tmp_path))
    storage = open_storage(Settings.load(env))
    return Backend(storage, lambda: [k.removeprefix("docs/") for k in s3.keys(bucket)], s3, bucket)


async def stream(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def put(storage: Storage, data: bytes) -> str:
    writer = storage.writer()
    async for chunk in stream(data):
        await writer.write(chunk)
    await writer.close()
    return writer.temp


async def test_commit_stores_by_content_and_keeps_a_second_copy(backend: Backend) -> None:
    store = backend.storage
    first = await put(store, PDF)
    key, created = await store.commit(first, "ab" * 32)
    assert (key, created) == (key_for("ab" * 32), True)
    second = await put(store, PDF)
    assert await store.commit(second, "ab" * 32) == (key, False)
    assert backend.keys() == sorted([key, second])  # kept until its jobs are in
    await store.discard(second)
    assert backend.keys() == [key]
    assert b"".join([c async for c in store.read(key)]) == PDF
    assert await store.size(key) == len(PDF)


async def test_a_large_document_is_streamed_in_parts_and_fetched_back(backend: Backend) -> None:
    data = PDF + bytes(range(256)) * (3 * SMALL_BYTES // 256)  # > one part, not a multiple
    temp = await put(backend.storage, data)
    if backend.s3 is not None:  # a multipart upload's ETag ends in -<number of parts>
        assert backend.s3.etag(backend.bucket, f"docs/{temp}").endswith('-2"')
    key, _ = await backend.storage.commit(temp, "cd" * 32)
    async with backend.storage.local_file(key) as path:
        assert path.read_bytes() == data
        local = path
    assert not local.exists() or local == getattr(backend.storage, "root", None) / key


async def test_a_discarded_upload_leaves_nothing(backend: Backend) -> None:
    for size in (1000, 3 * SMALL_BYTES):  # a buffered one and a multipart one
        writer = backend.storage.writer()
        async for chunk in stream(PDF + b"y" * size):
            await writer.write(chunk)
        await writer.discard()
    assert backend.keys() == []
    if backend.s3 is not None:
        assert backend.s3.open_uploads(backend.bucket) == []  # the multipart upload was aborted


async def test_remove_and_restore(backend: Backend) -> None:
    store = backend.storage
    key, _ = await store.commit(await put(store, PDF), "ef" * 32)
    kept = await put(store, PDF)
    await store.remove(key)
    await store.remove(key)  # twice is fine
    await store.restore(key, kept)
    assert b"".join([c async for c in store.read(key)]) == PDF
    with pytest.raises(FileNotFoundError):
        await store.size(key_for("00" * 32))


async def test_the_sweep_takes_only_stale_temp_entries(backend: Backend) -> None:
    store = backend.storage
    key, _ = await store.commit(await put(store, PDF), "12" * 32)
    temp = await put(store, PDF + b"z" * SMALL_BYTES)  # large: a temp object, not held
    assert await store.sweep_temp(max_age_s=3600) == 0
    assert await store.sweep_temp(max_age_s=-60) == 1  # everything counts as stale now
    assert backend.keys() == [key] and temp not in backend.keys()


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


async def test_an_unreachable_bucket_is_unavailable_not_missing(s3: S3, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    store = open_storage(Settings.load(s3.env(f"s3://{bucket}", TORI_DATA_DIR=str(tmp_path))))
    key, _ = await store.commit(await put(store, PDF), "78" * 32)
    assert await store.problem() is None
    s3.relay.down()
    try:
        problem = await store.problem()
        assert problem is not None and f"bucket s3://{bucket}" in problem
        with pytest.raises(StorageUnavailable):
            await store.commit(await put(store, PDF), "9a" * 32)
        with pytest.raises(StorageUnavailable):
            await put(store, PDF + b"z" * SMALL_BYTES)
        with pytest.raises(StorageUnavailable):
            async with store.local_file(key):
                pass
    finally:
        s3.relay.up()
    assert await store.problem() is None
    async with store.local_file(key) as path:
        assert path.read_bytes() == PDF


async def test_small_uploads_cost_two_requests_and_respect_the_memory_budget(
    s3: S3, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    store = open_storage(Settings.load(s3.env(f"s3://{bucket}", TORI_DATA_DIR=str(tmp_path))))
    assert isinstance(store, BucketStorage)
    temp = await put(store, PDF)
    assert temp in store.held and s3.keys(bucket) == []  # nothing sent before the commit
    key, created = await store.commit(temp, "bc" * 32)
    assert created and s3.keys(bucket) == [key] and store.held_bytes == 0
    big = b"%PDF-1.4\n" + b"q" * (4 * 1024 * 1024)
    temps = [await put(store, big) for _ in range(HELD_BUDGET // len(big) + 2)]
    assert store.held_bytes <= HELD_BUDGET
    unheld = sorted(t for t in temps if t not in store.held)
    assert len(unheld) == 2 and unheld == [k for k in s3.keys(bucket) if k.startswith("tmp/")]
    # beyond the budget: temp objects, as for large uploads
    for t in temps:
        await store.discard(t)
    assert store.held_bytes == 0 and s3.keys(bucket) == [key]
