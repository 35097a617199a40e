"""The store's contract on both backends (a directory and a bucket on moto), no database."""

from __future__ import annotations

import pytest

from tests.helpers import STORE_PDF as PDF
from tests.helpers import Backend, put, stream
from tori_ingest.store.backend import key_for
from tori_ingest.store.bucket import SMALL_BYTES


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
