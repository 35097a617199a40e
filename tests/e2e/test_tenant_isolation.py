"""Tenant isolation on a real server: dedup never crosses owners; a text bomb ends `too_large`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.helpers import TENANT_TOKENS as TOKENS
from tests.helpers import A, B, Server, StartServer, wait_for
from tests.helpers import tenant_pdf as unique_pdf
from tests.pdfs import text_bomb


@pytest.fixture(scope="module")
async def tenants(start_server: StartServer) -> AsyncIterator[Server]:
    """A real server (worker pool included) with two tenants, a and b."""
    yield await start_server(TORI_API_TOKENS=TOKENS)


def upload(srv: Server, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
    r = srv.client.post(
        "/jobs", files={"file": ("doc.pdf", data, "application/pdf")}, headers=headers
    )
    assert r.status_code == 202, r.text
    return r.json()


async def wait_job(srv: Server, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        body = srv.client.get(f"/jobs/{job_id}", headers=headers).json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    return await wait_for(ended, 120, f"job {job_id} to end")


# --- 1. dedup within one owner -----------------------------------------------------------------


async def test_dedup_answers_only_from_the_same_owners_results(tenants: Server) -> None:
    data = unique_pdf()
    first = upload(tenants, data, A)
    assert not first["deduplicated"]
    assert (await wait_job(tenants, first["job_id"], A))["status"] == "succeeded"

    theirs = upload(tenants, data, B)  # the same bytes from another tenant: processed anew
    assert not theirs["deduplicated"]
    assert theirs["status"] == "queued"
    mine = upload(tenants, data, A)  # the same tenant again: answered from its own result
    assert mine["deduplicated"] and mine["status"] == "succeeded"

    done = await wait_job(tenants, theirs["job_id"], B)
    assert done["status"] == "succeeded" and not done["deduplicated"]
    # b's own result now answers b's next upload, and a's result still answers a's.
    assert upload(tenants, data, B)["deduplicated"]
    assert upload(tenants, data, A)["deduplicated"]


async def test_an_erased_document_is_never_a_dedup_source(tenants: Server) -> None:
    """The erased row keeps neither result nor hash: the same bytes again are processed anew."""
    data = unique_pdf()
    job_id = upload(tenants, data, A)["job_id"]
    assert (await wait_job(tenants, job_id, A))["status"] == "succeeded"
    erase = tenants.client.delete(f"/jobs/{job_id}", params={"erase": "true"}, headers=A)
    assert erase.status_code == 200
    assert not upload(tenants, data, A)["deduplicated"]


async def test_a_400mb_text_bomb_ends_too_large_not_worker_crashed(tenants: Server) -> None:
    """The review's bomb: 1.6 MB of PDF, 400M characters of text on one page, real caps
    (TORI_MAX_MEMORY_MB 2048, 1M characters per page). PDFium used to abort the process."""
    bomb = text_bomb(400_000_000)
    assert len(bomb) < 2_000_000
    started = time.monotonic()
    job = await wait_job(tenants, upload(tenants, bomb, A)["job_id"], A)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "too_large", job["error"]
    assert time.monotonic() - started < 20
    # the pool survived: the next document is read as usual
    after = await wait_job(tenants, upload(tenants, unique_pdf(), A)["job_id"], A)
    assert after["status"] == "succeeded"
