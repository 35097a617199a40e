"""Bounded request bodies, in-process: JSON bodies and many maximal files are capped."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ApiClient, job_count, storage_files
from tests.pdfs import make_pdf


async def test_json_bodies_are_capped_while_reading(api_client: ApiClient, tmp_path: Path) -> None:
    async with api_client(TORI_IMPORT_DIR=str(tmp_path)) as api:
        paths = [f"{'x' * 200}/{i}.pdf" for i in range(1500)]  # > 256 KiB
        r = await api.post("/jobs", json={"paths": paths})
        assert r.status_code == 413 and "JSON body" in r.json()["error"]["message"]


async def test_a_request_cannot_carry_many_maximal_files(api_client: ApiClient) -> None:
    async with api_client(TORI_MAX_UPLOAD_MB="1") as api:
        before = await job_count(api)
        big = make_pdf(["x"]) + b"%" + b"0" * 900_000  # under the 1 MB per-file cap
        files = [("file", (f"{i}.pdf", big, "application/pdf")) for i in range(4)]
        r = await api.post("/jobs", files=files)
        assert r.status_code == 413 and "all files together" in r.json()["error"]["message"]
        assert await job_count(api) == before and storage_files(api) == []
