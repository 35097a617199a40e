"""The bucket store on a real S3 server: unreachable is unavailable; the memory budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import S3, put
from tests.helpers import STORE_PDF as PDF
from tori_ingest.core.errors import StorageUnavailable
from tori_ingest.core.settings import Settings
from tori_ingest.store.backend import open_storage
from tori_ingest.store.bucket import HELD_BUDGET, SMALL_BYTES, BucketStorage


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
