"""Machines that share no disk: every file in an S3 bucket (moto's real server on loopback).

Web and worker run as separate processes with separate data directories; the bucket is the
only place a document can travel through. Bucket contents are read from moto directly.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    S3,
    Api,
    ApiClient,
    Server,
    StartServer,
    fetchval,
    free_port,
    job_count,
    wait_for,
)
from tests.pdfs import make_pdf
from tori_ingest.core.settings import Settings
from tori_ingest.store.backend import key_for, open_storage
from tori_ingest.store.db import create_pool
from tori_ingest.worker import maintenance


def unique_pdf(words: str = "Ada Lovelace wrote the first program") -> bytes:
    return make_pdf([f"{words}. Token {uuid.uuid4().hex}."])


def local_files(srv: Server) -> list[Path]:
    """Documents a process left on its own disk (it should leave none)."""
    return [
        p
        for p in srv.data_dir.rglob("*")
        if p.is_file() and p.suffix in (".pdf", ".part", ".fetch")
    ]


@pytest.fixture(scope="module")
def bucket(s3: S3) -> str:
    return s3.new_bucket()


@pytest.fixture(scope="module")
async def web_and_worker(
    s3: S3, bucket: str, start_server: StartServer
) -> AsyncIterator[tuple[Server, Server]]:
    env = s3.env(f"s3://{bucket}/docs", TORI_IMPORT_URL=f"s3://{bucket}/import")
    web = await start_server("serve", "--no-worker", **env)
    worker = await start_server("worker", db_url=web.db_url, ready=False, **env)
    yield web, worker


async def test_web_and_worker_share_nothing_but_the_bucket(
    s3: S3, bucket: str, web_and_worker: tuple[Server, Server]
) -> None:
    web, worker = web_and_worker
    data = unique_pdf()
    job_id = web.upload(data, "two pages.pdf").json()["job_id"]
    job = await web.wait_job(job_id)
    assert job["status"] == "succeeded", job
    text = web.client.get(f"/jobs/{job_id}/result", params={"format": "text"}).text
    assert "Lovelace" in text
    assert any(k.startswith("docs/") and k.endswith(".pdf") for k in s3.keys(bucket))
    assert local_files(web) == [] and local_files(worker) == []  # fetched copy cleaned up
    assert not [k for k in s3.keys(bucket) if k.startswith("docs/tmp/")]
    # the original: a redirect to a presigned URL of the bucket, or streamed on request
    found = web.client.get(f"/jobs/{job_id}/file")
    assert found.status_code == 307 and found.headers["location"].startswith(s3.endpoint)
    async with httpx.AsyncClient(timeout=10) as plain:  # no token, no API: the bucket itself
        presigned = await plain.get(found.headers["location"])
        assert presigned.content == data
        # the bucket answers a download, never a page it would render (HTML/PDF polyglots)
        assert presigned.headers["content-disposition"] == "attachment"
        assert presigned.headers["content-type"] == "application/octet-stream"
    streamed = web.client.get(f"/jobs/{job_id}/file", params={"redirect": "false"})
    assert streamed.content == data and streamed.headers["content-type"] == "application/pdf"
    assert "two%20pages.pdf" in streamed.headers["content-disposition"]


async def test_a_file_missing_from_the_bucket_is_no_redirect_to_a_404(
    s3: S3, bucket: str, web_and_worker: tuple[Server, Server]
) -> None:
    web, _ = web_and_worker
    before = set(s3.keys(bucket))
    job_id = web.upload(unique_pdf("Katherine Johnson computed orbits"), "moved.pdf").json()
    assert (await web.wait_job(job_id["job_id"]))["status"] == "succeeded"
    (key,) = set(s3.keys(bucket)) - before
    s3.delete(bucket, key)  # as for a job stored before TORI_STORAGE_URL pointed here
    for params in ({}, {"redirect": "false"}):
        r = web.client.get(f"/jobs/{job_id['job_id']}/file", params=params)
        assert r.status_code == 410, r.headers  # not 307 to a presigned URL that 404s
        assert "not in the current store" in r.json()["error"]["message"]


async def test_by_reference_from_the_bucket(
    s3: S3, bucket: str, web_and_worker: tuple[Server, Server]
) -> None:
    web, _ = web_and_worker
    first, second = unique_pdf(), unique_pdf("Grace Hopper wrote a compiler")
    s3.put(bucket, "import/batch/a.pdf", first)
    s3.put(bucket, "import/batch/b.pdf", second)
    r = web.client.post(
        "/jobs", json={"paths": ["batch/a.pdf", f"s3://{bucket}/import/batch/b.pdf"]}
    )
    assert r.status_code == 202, r.text
    jobs = r.json()
    assert [web.status(j["job_id"])["document"]["filename"] for j in jobs] == ["a.pdf", "b.pdf"]
    for j in jobs:
        assert (await web.wait_job(j["job_id"]))["status"] == "succeeded"
    text = web.client.get(f"/jobs/{jobs[1]['job_id']}/result", params={"format": "text"}).text
    assert "Hopper" in text
    before = await job_count(web)
    for body, code in (
        ({"path": "batch/missing.pdf"}, "bad_request"),
        ({"path": f"s3://{bucket}/elsewhere/a.pdf"}, "bad_request"),
        ({"path": "../docs/x.pdf"}, "bad_request"),
    ):
        refused = web.client.post("/jobs", json=body)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == code, body
    assert await job_count(web) == before
    assert not [k for k in s3.keys(bucket) if k.startswith("docs/tmp/")]


async def test_erase_and_retention_delete_the_object(
    s3: S3, bucket: str, web_and_worker: tuple[Server, Server], tmp_path: Path
) -> None:
    web, _ = web_and_worker
    erased = web.upload(unique_pdf()).json()
    purged = web.upload(unique_pdf()).json()
    for job in (erased, purged):
        assert (await web.wait_job(job["job_id"]))["status"] == "succeeded"
    keys = {
        j["job_id"]: f"docs/{key_for(web.status(j['job_id'])['document']['sha256'])}"
        for j in (erased, purged)
    }
    assert set(keys.values()) <= set(s3.keys(bucket))
    assert (
        web.client.delete(f"/jobs/{erased['job_id']}", params={"erase": "true"}).status_code == 200
    )
    assert keys[erased["job_id"]] not in s3.keys(bucket)
    await fetchval(
        web.db_url,
        "UPDATE tori_jobs SET finished_at = now() - interval '40 days' WHERE id = $1",
        uuid.UUID(purged["job_id"]),
    )
    env = s3.env(f"s3://{bucket}/docs", TORI_DATA_DIR=str(tmp_path))
    db = await create_pool(web.db_url, max_size=2)
    try:
        counts = await maintenance.purge(db, open_storage(Settings.load(env)), days=30)
    finally:
        await db.close()
    assert counts["files"] == 1 and keys[purged["job_id"]] not in s3.keys(bucket)
    gone = web.client.get(f"/jobs/{purged['job_id']}/file")
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "expired"


# --- in-process API on the bucket: bad uploads leave nothing --------------------------------------


@pytest.fixture(scope="module")
async def bucket_api(s3: S3, api_client: ApiClient) -> AsyncIterator[tuple[Api, str]]:
    name = s3.new_bucket()
    async with api_client(**s3.env(f"s3://{name}", TORI_MAX_UPLOAD_MB="12")) as api:
        yield api, name


def multipart(parts: Iterator[bytes], boundary: str = "tori-test-boundary") -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    yield from parts
    yield f"\r\n--{boundary}--\r\n".encode()


async def test_refused_uploads_leave_nothing_in_the_bucket(
    s3: S3, bucket_api: tuple[Api, str]
) -> None:
    api, name = bucket_api
    before = await job_count(api)
    too_big = b"%PDF-1.4\n" + b"x" * (13 * 1024 * 1024)  # past the 12 MB cap, after a part
    not_a_pdf = b"GIF89a" + b"x" * (7 * 1024 * 1024)
    for data, code in (
        (too_big, "too_large"),
        (not_a_pdf, "unsupported_type"),
        (b"", "empty_file"),
    ):
        r = await api.upload(data)
        assert r.json()["error"]["code"] == code
    truncated = b"".join(multipart(iter([b"%PDF-1.4\n" + b"y" * (6 * 1024 * 1024)])))[:-10]
    r = await api.post(
        "/jobs",
        content=truncated,
        headers={"content-type": "multipart/form-data; boundary=tori-test-boundary"},
    )
    assert r.status_code == 400
    assert await job_count(api) == before
    assert s3.keys(name) == [] and s3.open_uploads(name) == []


async def test_an_upload_while_the_bucket_is_away_is_503_and_leaves_no_job(
    s3: S3, bucket_api: tuple[Api, str]
) -> None:
    api, _ = bucket_api
    before = await job_count(api)
    api.allow_server_errors = True
    s3.relay.down()
    try:
        ready = await api.get("/readyz")
        assert ready.status_code == 503 and "bucket" in ready.json()["error"]["message"]
        r = await api.upload(unique_pdf())
        assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
        assert "storage" in r.json()["error"]["message"]
    finally:
        s3.relay.up()
        api.allow_server_errors = False
    assert await job_count(api) == before
    assert (await api.upload(unique_pdf())).status_code == 202  # back by itself


# --- the outage seen by a worker: the job waits, uses no attempt, and finishes ----------------


async def test_a_job_survives_the_bucket_going_away(s3: S3, start_server: StartServer) -> None:
    name = s3.new_bucket()
    env = s3.env(f"s3://{name}")
    web = await start_server("serve", "--no-worker", **env)
    job_id = web.upload(unique_pdf()).json()["job_id"]  # stored while the bucket is there
    s3.relay.down()
    try:
        worker = await start_server("worker", db_url=web.db_url, ready=False, **env)
        await wait_for(
            lambda: "job.storage_down" in worker.log_path.read_text(), 60, "a fetch to fail"
        )
        job = web.status(job_id)
        assert job["status"] in ("queued", "running") and job["attempts"] == 0, job
    finally:
        s3.relay.up()
    job = await web.wait_job(job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 1, job


# --- a large upload streams through in parts ------------------------------------------------------

BIG_MB = 1024


async def test_a_gigabyte_upload_streams_in_parts_in_bounded_memory(
    s3: S3, start_server: StartServer
) -> None:
    name = s3.new_bucket()
    web = await start_server(
        "serve", "--no-worker", **s3.env(f"s3://{name}", TORI_MAX_UPLOAD_MB=str(BIG_MB + 1))
    )
    rss_before = peak_rss_mb(web)
    block = b"%PDF-1.4\n" + bytes(range(256)) * 4096  # 1 MiB + a header, then the same bytes
    chunks = (block if n == 0 else block[9:] for n in range(BIG_MB))

    async def body() -> AsyncIterator[bytes]:
        for chunk in multipart(chunks):
            yield chunk

    async with httpx.AsyncClient(timeout=600) as client:
        r = await client.post(
            f"{web.base}/jobs",
            content=body(),
            headers={"content-type": "multipart/form-data; boundary=tori-test-boundary"},
        )
    assert r.status_code == 202, r.text
    (key,) = [k for k in s3.keys(name) if k.endswith(".pdf")]
    assert s3.size(name, key) == BIG_MB * 1024 * 1024 + 9
    growth = peak_rss_mb(web) - rss_before
    assert growth < 150, f"the API process grew by {growth:.0f} MB for a {BIG_MB} MB upload"
    assert not s3.open_uploads(name)


def peak_rss_mb(srv: Server) -> float:
    for line in Path(f"/proc/{srv.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


# --- a back-fill of a whole prefix ----------------------------------------------------------


async def test_submit_a_whole_prefix_in_batches_and_resume(
    s3: S3, start_server: StartServer
) -> None:
    name = s3.new_bucket()
    env = s3.env(f"s3://{name}/docs", TORI_IMPORT_URL=f"s3://{name}/import")
    web = await start_server("serve", "--no-worker", **env)  # jobs stay queued: count them
    for n in range(230):
        s3.put(name, f"import/many/{n:04d}.pdf", make_pdf([f"Document number {n}."]))
    s3.put(name, "import/many/bad.pdf", b"not a document at all")
    s3.put(name, "import/many/notes.txt", b"ignored: not a document suffix")
    s3.put(name, "import/other/x.pdf", make_pdf(["outside the prefix"]))
    command = [sys.executable, "-m", "tori_ingest", "submit", "--by-reference",
               f"s3://{name}/import/many/"]  # fmt: skip
    run_env = {**os.environ, **env, "TORI_URL": web.base}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=300)

    first = await asyncio.to_thread(run)
    assert first.returncode == 1, first.stdout + first.stderr  # one object was refused
    assert "231 objects listed, 230 accepted" in first.stdout, first.stdout
    assert "unsupported_type" in first.stdout
    assert await job_count(web) == 230
    again = await asyncio.to_thread(run)
    assert "(230 already submitted)" in again.stdout, again.stdout
    assert await job_count(web) == 230  # resumed, not doubled


async def test_a_backfill_without_a_service_stops_at_once(s3: S3, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tori_ingest", "submit", "--by-reference", "s3://any/prefix/"]
    env = {**os.environ, **s3.env("s3://any"), "TORI_URL": f"http://127.0.0.1:{free_port()}"}
    out = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "cannot reach the service" in out.stderr, out.stderr
