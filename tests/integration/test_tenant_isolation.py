"""Tenant isolation in-process: no existence oracle in `after=`; erase leaves no trace."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from tests.helpers import TENANT_TOKENS as TOKENS
from tests.helpers import A, ApiClient, B, fetchval
from tests.helpers import tenant_pdf as unique_pdf
from tori_ingest.store import views

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()  # callbacks need one


# --- 2. the listing's keyset anchor --------------------------------------------------------------


async def test_after_another_owners_job_answers_like_an_unknown_id(
    api_client: ApiClient,
) -> None:
    async with api_client(TORI_API_TOKENS=TOKENS) as api:
        for _ in range(2):  # b's jobs older than a's: an unfiltered anchor would list them
            assert (await api.post("/jobs", files=_file(), headers=B)).status_code == 202
        foreign = (await api.post("/jobs", files=_file(), headers=A)).json()["job_id"]

        def listing(after: str) -> Any:
            return api.get("/jobs", params={"after": after, "limit": 10}, headers=B)

        by_foreign, by_unknown = await listing(foreign), await listing(str(uuid.uuid4()))
        assert by_foreign.status_code == by_unknown.status_code == 200
        assert by_foreign.json() == by_unknown.json() == {"jobs": [], "next": None}

        # b's own ids still page (the anchor is filtered by owner, not dropped).
        own = (await api.get("/jobs", params={"limit": 1}, headers=B)).json()
        rest = (await listing(own["next"])).json()
        assert [j["job_id"] for j in rest["jobs"]] != [] and rest["next"] is None
        # a sees its own job and, anchored on it, nothing of b's.
        assert (
            await api.get("/jobs", params={"after": foreign}, headers=A)
        ).json() == by_unknown.json()


def _file() -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("doc.pdf", unique_pdf(), "application/pdf")}


# --- 3. erase scrubs the row ---------------------------------------------------------------------


async def test_erase_leaves_no_trace_of_the_document_on_the_row(api_client: ApiClient) -> None:
    async with api_client(TORI_WEBHOOK_SECRET=SECRET) as api:
        hook = "https://hooks.example.com/tori-erase"
        job_id = (await api.upload(unique_pdf(), callback_url=hook)).json()["job_id"]
        uid = uuid.UUID(job_id)
        # Cancelled first: the terminal state queues a webhook delivery holding the URL.
        assert (await api.delete(f"/jobs/{job_id}")).json()["status"] == "cancelled"
        assert (
            await fetchval(
                api.db_url, "SELECT url FROM tori_webhook_deliveries WHERE job_id = $1", uid
            )
            == hook
        )
        key = await fetchval(api.db_url, "SELECT storage_key FROM tori_jobs WHERE id = $1", uid)
        assert (api.storage / key).exists()

        erased = await api.delete(f"/jobs/{job_id}", params={"erase": "true"})
        assert erased.status_code == 200 and erased.json()["erased"] is True

        for column in ("sha256", "bytes", "storage_key", "callback_url"):
            value = await fetchval(api.db_url, f"SELECT {column} FROM tori_jobs WHERE id = $1", uid)
            assert value is None, column
        assert (
            await fetchval(
                api.db_url, "SELECT url FROM tori_webhook_deliveries WHERE job_id = $1", uid
            )
            == ""
        )
        assert not (api.storage / key).exists()

        # The bare row answers as an erased job did before: 410 expired, everywhere.
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/result", f"/jobs/{job_id}/file"):
            r = await api.get(path)
            assert r.status_code == 410, path
            assert r.json()["error"]["code"] == "expired"
        assert (await api.delete(f"/jobs/{job_id}", params={"erase": "true"})).status_code == 410
        assert job_id not in {j["job_id"] for j in (await api.get("/jobs")).json()["jobs"]}
        # Readers of the row cope with the NULLs (the CLI's `status` renders any row).
        view = views.view(await views.get(api.ctx.db, uid))
        assert (view.document.sha256, view.document.bytes) == ("", 0)
