"""Reliability at the store: late runs, recovery, refunds, reconciler, by-reference refusals."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.helpers import (
    Api,
    ApiClient,
    job_count,
    storage_files,
    wait_for,
)
from tests.pdfs import prose_pdf
from tori_ingest.core.models import (
    Document,
    Result,
    ResultPipeline,
    Stats,
    Timings,
    serialise,
)
from tori_ingest.core.vocab import Status
from tori_ingest.http.hub import EventHub
from tori_ingest.store import jobs
from tori_ingest.store.db import create_pool
from tori_ingest.worker.maintenance import Reconciler


@pytest.fixture(scope="module")
async def db(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_url, max_size=4)
    yield pool
    await pool.close()


async def new_job(db: asyncpg.Pool) -> uuid.UUID:
    sha = uuid.uuid4().hex * 2
    async with db.acquire() as conn:
        row = await jobs.create(
            conn, jobs.NewJob(sha256=sha, filename="a.pdf", bytes=1, storage_key="k")
        )
    return row["id"]


def result_of(job_id: uuid.UUID) -> Result:
    return Result(
        job_id=str(job_id),
        document=Document(
            sha256="0" * 64, filename="a.pdf", bytes=1, pages=1, title=None, author=None,
            producer=None, created=None, encrypted=False,
        ),
        pages=[], entities=[], keyphrases=[], chunks=[],
        stats=Stats(words=0, sentences=0, chars=0), warnings=[],
        timings_ms=Timings(queue_wait=0, extract=0, nlp=0, total=0),
        pipeline=ResultPipeline(model="m", model_version="1", tori_ingest_version="t"),
    )  # fmt: skip


async def results(db: asyncpg.Pool, job_id: uuid.UUID) -> int:
    return await db.fetchval("SELECT count(*) FROM tori_results WHERE job_id = $1", job_id)


# --- 1, 2: fencing, attempts, the reconciler (store level) --------------------------------------


async def test_a_late_run_cannot_overwrite_a_newer_one(db: asyncpg.Pool) -> None:
    job_id = await new_job(db)
    first = await jobs.start(db, job_id, "test:1")
    assert await jobs.requeue(db, job_id, None, refund=True)  # stall recovery
    second = await jobs.start(db, job_id, "test:1")
    assert (first["runs"], second["runs"]) == (1, 2)
    # The first run comes back late: none of its writes land.
    await jobs.set_progress(db, job_id, first["runs"], 5, 9)
    assert not await jobs.fail(db, job_id, "internal", "late", run=first["runs"])
    assert not await jobs.succeed(db, job_id, first["runs"], serialise(result_of(job_id)))
    assert not await jobs.requeue(db, job_id, first["runs"], refund=False)
    row = await db.fetchrow(
        "SELECT status, pages_done, attempts FROM tori_jobs WHERE id = $1", job_id
    )
    assert tuple(row) == ("running", 0, 1)
    assert await jobs.succeed(db, job_id, second["runs"], serialise(result_of(job_id)))
    assert await results(db, job_id) == 1


async def test_a_run_recovered_while_alive_keeps_its_result(db: asyncpg.Pool) -> None:
    job_id = await new_job(db)
    run = (await jobs.start(db, job_id, "test:1"))["runs"]
    assert await jobs.requeue(db, job_id, None, refund=True)  # its worker looked dead...
    assert await jobs.succeed(db, job_id, run, serialise(result_of(job_id)))  # ...but finished
    row = await db.fetchrow("SELECT status, attempts FROM tori_jobs WHERE id = $1", job_id)
    assert tuple(row) == ("succeeded", 1)  # the refunded attempt counts after all
    assert await jobs.start(db, job_id, "test:1") is None  # the re-queued entry then does nothing


async def test_shutdown_refunds_the_attempt(db: asyncpg.Pool) -> None:
    job_id = await new_job(db)
    run = (await jobs.start(db, job_id, "test:1"))["runs"]
    assert await jobs.requeue(db, job_id, run, refund=True)
    assert await db.fetchval("SELECT attempts FROM tori_jobs WHERE id = $1", job_id) == 0
    run = (await jobs.start(db, job_id, "test:1"))["runs"]
    assert await jobs.requeue(db, job_id, run, refund=False)  # a transient error: it counts
    assert await db.fetchval("SELECT attempts FROM tori_jobs WHERE id = $1", job_id) == 1


async def test_reconciler_requeues_rows_that_lost_their_queue_entry(db: asyncpg.Pool) -> None:
    lost, fine = await new_job(db), await new_job(db)
    await db.execute(
        "DELETE FROM procrastinate_jobs WHERE id ="
        " (SELECT procrastinate_job_id FROM tori_jobs WHERE id = $1)",
        lost,
    )
    reconciler = Reconciler()
    assert await reconciler.check(db) == 0  # seen once: maybe mid-transition, left alone
    assert await reconciler.check(db) == 1
    entry = await db.fetchrow(
        "SELECT q.status::text AS status, q.args FROM tori_jobs j"
        " JOIN procrastinate_jobs q ON q.id = j.procrastinate_job_id WHERE j.id = $1",
        lost,
    )
    assert entry["status"] == "todo" and str(lost) in entry["args"]
    assert fine not in await jobs.orphans(db)
    assert await reconciler.check(db) == 0


# --- 9: resync after a reconnect is retried until it works ---------------------------------------


class FlakySubscriber:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def push(self, event: Any, *, snapshot: bool = False) -> None:
        pass

    async def resync(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("database hiccup")


async def test_resync_is_retried_until_it_succeeds(db_url: str) -> None:
    hub = EventHub(db_url)
    flaky = FlakySubscriber(failures=2)
    hub.subscribe(str(uuid.uuid4()), flaky)
    hub.start()
    try:
        await wait_for(lambda: flaky.calls == 3, 30, "three resync attempts")
        await asyncio.sleep(0)
        assert flaky.calls == 3
    finally:
        await hub.stop()


async def test_job_errors_hold_no_exception_repr(db: asyncpg.Pool) -> None:
    job_id = await new_job(db)
    run = (await jobs.start(db, job_id, "test:1"))["runs"]
    assert await jobs.fail(db, job_id, "internal", "bad \x00 bytes", run=run)
    message = await db.fetchval("SELECT error_message FROM tori_jobs WHERE id = $1", job_id)
    assert message == "bad  bytes" and Status(await db.fetchval(
        "SELECT status FROM tori_jobs WHERE id = $1", job_id)) is Status.FAILED  # fmt: skip


async def test_by_reference_refuses_links_and_special_files(
    api_client: ApiClient, import_tree: Path
) -> None:
    async with api_client(TORI_IMPORT_DIR=str(import_tree)) as api:
        before = await job_count(api)
        for path in ("link.pdf", "dirlink/a.pdf", "pipe.pdf"):  # a FIFO must not block either
            r = await asyncio.wait_for(api.post("/jobs", json={"path": path}), 10)
            assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", path
        assert await job_count(api) == before
        assert storage_files(api) == []
        ok = await api.post("/jobs", json={"path": "real/a.pdf"})
        assert ok.status_code == 202


# --- 6: a shared stored file is never deleted under a job that needs it --------------------------


# (the store's side of it, for both backends: tests/*/test_storage.py)


async def test_retry_of_a_purged_job_is_410(api: Api, db: asyncpg.Pool) -> None:
    job_id = await new_job(db)
    run = (await jobs.start(db, job_id, "test:1"))["runs"]
    await jobs.fail(db, job_id, "corrupt_pdf", "bad", run=run)
    await db.execute("UPDATE tori_jobs SET purged_at = now() WHERE id = $1", job_id)
    r = await api.post(f"/jobs/{job_id}/retry")
    assert r.status_code == 410 and r.json()["error"]["code"] == "expired"


async def test_storage_errors_are_not_blamed_on_the_database(api_client: ApiClient) -> None:
    async with api_client() as api:
        blocker = api.storage / "not-a-directory"
        blocker.write_bytes(b"")
        api.ctx.storage.root = blocker  # every temp file now fails like a full/broken disk
        api.allow_server_errors = True  # the 503 is the point here
        r = await api.upload(prose_pdf(1))
        assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
        assert "storage" in r.json()["error"]["message"]
        assert "database" not in r.json()["error"]["message"]
