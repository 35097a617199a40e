"""Restarts, races and odd bytes never lose, duplicate or leak a job.

Store-level races run on a real Postgres with the real SQL; the rest with real `serve` and
`worker` processes, real signals and real kills.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

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

from .conftest import (
    Api,
    ApiClient,
    Server,
    StartServer,
    fetchval,
    job_count,
    storage_files,
    wait_for,
)
from .pdfs import make_pdf, prose_pdf
from .test_cli import cli


def hooked(marker: str, pages: int = 1) -> bytes:
    """A valid PDF whose first KiB carries a test-hook marker (honoured with TORI_TEST_HOOKS)."""
    data = prose_pdf(pages)
    head, rest = data.split(b"\n", 1)
    return head + f"\n%tori-test-{marker}\n".encode() + rest


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


# --- 1, 2: the same with real processes ---------------------------------------------------------


async def test_worker_in_its_shutdown_grace_is_not_robbed(start_server: StartServer) -> None:
    """A job longer than the old 10 s stall threshold, SIGTERM mid-job, a second worker
    watching: the first finishes it within the grace, once, with one attempt."""
    api = await start_server("serve", "--no-worker")
    shared = {"TORI_STORAGE_DIR": str(api.storage), "TORI_TEST_HOOKS": "1"}
    first = await start_server("worker", db_url=api.db_url, ready=False,
                               TORI_SHUTDOWN_GRACE_S="30", **shared)  # fmt: skip
    job_id = api.upload(hooked("slow=14")).json()["job_id"]
    await wait_for(lambda: api.status(job_id)["status"] == "running", 60, "worker A to start")
    count = "SELECT count(*) FROM procrastinate_workers"
    per_copy = await fetchval(api.db_url, count)  # a copy runs several (ingest, webhooks…)
    second = await start_server("worker", db_url=api.db_url, ready=False, **shared)
    await wait_for(
        lambda: fetchval(api.db_url, f"{count} HAVING count(*) >= {2 * per_copy}"),
        60,
        "worker B to register",
    )
    stopped = asyncio.to_thread(first.stop, signal.SIGTERM, 60)
    assert await stopped == 0
    job = await api.wait_job(job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 1, (job["error"], job["attempts"])
    assert await fetchval(api.db_url, "SELECT runs FROM tori_jobs WHERE id = $1::uuid", job_id) == 1
    assert "recovered a stalled job" not in second.log_path.read_text()


async def test_max_attempts_one_means_one(start_server: StartServer) -> None:
    api = await start_server("serve", "--no-worker")
    job_id = api.upload(prose_pdf(1), "gone.pdf").json()["job_id"]
    for path in api.storage.rglob("*.pdf"):
        path.unlink()  # the stored file vanished: a storage error, retried if attempts allow
    await start_server("worker", db_url=api.db_url, ready=False,
                       TORI_STORAGE_DIR=str(api.storage), TORI_MAX_ATTEMPTS="1")  # fmt: skip
    job = await api.wait_job(job_id, timeout=60)
    assert job["status"] == "failed" and job["error"]["code"] == "internal", job
    assert job["attempts"] == 1
    assert "TORI_MAX_ATTEMPTS" in job["error"]["message"] and "Error" not in job["error"]["message"]


async def test_shutdown_past_grace_uses_no_attempt(start_server: StartServer) -> None:
    srv = await start_server(TORI_TEST_HOOKS="1", TORI_SHUTDOWN_GRACE_S="1", TORI_MAX_ATTEMPTS="1")
    job_id = srv.upload(hooked("slow=6")).json()["job_id"]
    await wait_for(lambda: srv.status(job_id)["status"] == "running", 30, "the job to run")
    assert await asyncio.to_thread(srv.stop, signal.SIGTERM) == 0
    row = await fetchval(srv.db_url, "SELECT status || ':' || attempts FROM tori_jobs"
                         " WHERE id = $1::uuid", job_id)  # fmt: skip
    assert row == "queued:0"
    again = await start_server(db_url=srv.db_url, TORI_TEST_HOOKS="1", TORI_MAX_ATTEMPTS="1",
                               TORI_STORAGE_DIR=str(srv.storage))  # fmt: skip
    job = await again.wait_job(job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 1, (job["error"], job["attempts"])


# --- 3: NUL from a broken page ------------------------------------------------------------------


def pdf_with_bad_filter() -> bytes:
    """Two pages; page 2's content stream names a filter with a NUL (`/Bad#00Name`)."""
    data = make_pdf(["The first page reads fine.", "The second page does not."])
    first = data.index(b"/FlateDecode")
    second = data.index(b"/FlateDecode", first + 1)
    return data[:second] + b"/Bad#00Name " + data[second + len(b"/FlateDecode") :]


async def test_nul_in_a_warning_never_sticks_a_job(server: Server) -> None:
    job = await server.wait_job(server.upload(pdf_with_bad_filter()).json()["job_id"])
    assert job["status"] == "succeeded", job
    result = server.client.get(f"/jobs/{job['job_id']}/result").json()
    assert result["pages"][0]["text"].startswith("The first page")
    assert any("page 2" in w for w in result["warnings"]), result["warnings"]
    assert not any("\x00" in w for w in result["warnings"])


# --- 4: dedup never hands out an encrypted document's text ---------------------------------------


async def test_dedup_does_not_bypass_a_password(server: Server) -> None:
    locked = make_pdf([f"Secret {uuid.uuid4().hex}."], user_password="pw")
    opened = await server.wait_job(server.upload(locked, "a.pdf", password="pw").json()["job_id"])
    assert opened["status"] == "succeeded"
    for fields in ({}, {"password": "wrong"}):
        job = await server.wait_job(server.upload(locked, "b.pdf", **fields).json()["job_id"])
        assert job["deduplicated"] is False and job["status"] == "failed", job
        assert job["error"]["code"] in ("encrypted", "bad_password")


async def test_dedup_copy_carries_the_new_file_name(server: Server) -> None:
    data = make_pdf([f"Plain {uuid.uuid4().hex}."])
    await server.wait_job(server.upload(data, "first.pdf").json()["job_id"])
    copy = server.upload(data, "second.pdf").json()
    assert copy["deduplicated"] is True
    result = server.client.get(f"/jobs/{copy['job_id']}/result").json()
    assert result["document"]["filename"] == "second.pdf" and result["job_id"] == copy["job_id"]


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


# --- 10: leaks -------------------------------------------------------------------------------


def test_worker_probe_port_obeys_the_bind_rule() -> None:
    out = cli("worker", TORI_HOST="0.0.0.0", TORI_METRICS_PORT="9", TORI_SPACY_MODEL="blank:en")
    assert out.returncode == 2 and "refusing to listen on 0.0.0.0" in out.stderr


async def test_job_errors_hold_no_exception_repr(db: asyncpg.Pool) -> None:
    job_id = await new_job(db)
    run = (await jobs.start(db, job_id, "test:1"))["runs"]
    assert await jobs.fail(db, job_id, "internal", "bad \x00 bytes", run=run)
    message = await db.fetchval("SELECT error_message FROM tori_jobs WHERE id = $1", job_id)
    assert message == "bad  bytes" and Status(await db.fetchval(
        "SELECT status FROM tori_jobs WHERE id = $1", job_id)) is Status.FAILED  # fmt: skip


# --- 5: by-reference files are copied in safely --------------------------------------------------


@pytest.fixture
def import_tree(tmp_path: Path) -> Path:
    root = tmp_path / "import"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.pdf").write_bytes(prose_pdf(1))
    (tmp_path / "outside.pdf").write_bytes(make_pdf(["Someone else's document."]))
    (root / "link.pdf").symlink_to(tmp_path / "outside.pdf")
    (root / "dirlink").symlink_to(root / "real")
    os.mkfifo(root / "pipe.pdf")
    return root


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


async def test_by_reference_job_keeps_the_bytes_it_was_accepted_for(
    start_server: StartServer, import_tree: Path
) -> None:
    srv = await start_server("serve", "--no-worker", TORI_IMPORT_DIR=str(import_tree))
    job_id = srv.client.post("/jobs", json={"path": "real/a.pdf"}).json()["job_id"]
    swapped = import_tree / "real" / "a.pdf"
    swapped.unlink()
    swapped.symlink_to(import_tree.parent / "outside.pdf")  # swapped after the submit
    await start_server("worker", db_url=srv.db_url, ready=False, TORI_STORAGE_DIR=str(srv.storage))
    job = await srv.wait_job(job_id)
    assert job["status"] == "succeeded", job
    text = srv.client.get(f"/jobs/{job_id}/result", params={"format": "text"}).text
    assert "Someone else" not in text and "Ada" in text


# --- 6: a shared stored file is never deleted under a job that needs it --------------------------


# (the store's side of it, for both backends: tests/test_storage.py)


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
