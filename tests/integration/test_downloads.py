"""GET /jobs/{id}/file when the store no longer has the file: a file missing from the current
store (stored before TORI_STORAGE_URL changed, or deleted by hand) is named as such, never
called "purged"."""

from __future__ import annotations

import uuid

from tests.helpers import Api, fetchval
from tests.pdfs import make_pdf


async def test_a_file_missing_from_the_store_says_so(api: Api) -> None:
    job_id = (await api.upload(make_pdf([uuid.uuid4().hex]))).json()["job_id"]
    assert (await api.get(f"/jobs/{job_id}/file")).status_code == 200
    key = await fetchval(
        api.db_url, "SELECT storage_key FROM tori_jobs WHERE id = $1", uuid.UUID(job_id)
    )
    (api.storage / key).unlink()  # as after a switch to another store
    for params in ({}, {"redirect": "false"}):
        r = await api.get(f"/jobs/{job_id}/file", params=params)
        assert r.status_code == 410 and r.json()["error"]["code"] == "expired"
        message = r.json()["error"]["message"]
        assert "not in the current store" in message and "purged" not in message
