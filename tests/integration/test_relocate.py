"""`storage migrate`'s copy: every live job's document lands in the new store under its own key,
once (a second run finds them there), erased jobs stay behind, and a document missing from
the former store is counted, not invented."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

from tests.helpers import ApiClient, fetchval
from tests.pdfs import make_pdf
from tori_ingest.store.db import close_pool, create_pool
from tori_ingest.store.dirstore import DirStorage
from tori_ingest.store.relocate import relocate


async def test_documents_move_to_the_new_store_under_their_keys(
    api_client: ApiClient, fresh_db_url: str, tmp_path: Path
) -> None:
    async with api_client(db_url=fresh_db_url) as api:
        kept = [(await api.upload(make_pdf([uuid.uuid4().hex]))).json()["job_id"] for _ in "ab"]
        erased = (await api.upload(make_pdf([uuid.uuid4().hex]))).json()["job_id"]
        assert (await api.delete(f"/jobs/{erased}", params={"erase": "true"})).status_code == 200
        keys = [
            await fetchval(
                fresh_db_url, "SELECT storage_key FROM tori_jobs WHERE id = $1", uuid.UUID(j)
            )
            for j in kept
        ]
        old = DirStorage(Path(api.storage))
        new = DirStorage(tmp_path / "new")
        new.prepare()
        db = await create_pool(fresh_db_url, max_size=2)
        try:
            assert await relocate(db, old, new) == Counter(copied=2)
            for key in keys:
                assert (tmp_path / "new" / key).read_bytes() == (
                    Path(api.storage) / key
                ).read_bytes()
            assert await relocate(db, old, new) == Counter(present=2)  # safe to run again
            (tmp_path / "new" / keys[0]).unlink()
            (Path(api.storage) / keys[0]).unlink()
            assert await relocate(db, old, new) == Counter(present=1, missing=1)
            assert not [p for p in (tmp_path / "new").rglob("*") if p.name.endswith(".part")]
        finally:
            await close_pool(db)
