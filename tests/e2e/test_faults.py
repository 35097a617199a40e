"""SPEC §6 for real: hangs, crashes, memory bombs, cancel/retry, SIGKILL, SIGTERM, DB restart.

Failure modes are triggered by markers in a test PDF's first KiB, honoured only with
TORI_TEST_HOOKS=1 (see `pipeline/hooks.py`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import orjson
import pytest
from websockets.sync.client import connect

from tests.helpers import Server, StartServer, fetchval, storage_files, wait_for, ws_url
from tests.pdfs import hooked, prose_pdf


async def results_of(db_url: str, job_id: str) -> int:
    return await fetchval(
        db_url, "SELECT count(*) FROM tori_results WHERE job_id = $1::uuid", job_id
    )


@pytest.fixture(scope="module")
async def hooks(start_server: StartServer) -> Server:
    return await start_server(TORI_TEST_HOOKS="1", TORI_JOB_TIMEOUT_S="3")


async def test_hang_is_killed_at_timeout_and_neighbours_finish(hooks: Server) -> None:
    hang = hooks.upload(hooked("hang")).json()["job_id"]
    others = [hooks.upload(prose_pdf(2)).json()["job_id"] for _ in range(3)]
    job = await hooks.wait_job(hang)
    assert job["status"] == "failed" and job["error"]["code"] == "timeout"
    assert job["attempts"] == 1  # permanent: not retried
    assert [(await hooks.wait_job(i))["status"] for i in others] == ["succeeded"] * 3
    # The pool replaced the killed process and still works.
    assert (await hooks.wait_job(hooks.upload(prose_pdf(1)).json()["job_id"]))[
        "status"
    ] == "succeeded"


async def test_segfault_fails_only_its_own_job(hooks: Server) -> None:
    crash = hooks.upload(hooked("crash")).json()["job_id"]
    others = [hooks.upload(prose_pdf(2)).json()["job_id"] for _ in range(3)]
    job = await hooks.wait_job(crash)
    assert job["status"] == "failed" and job["error"]["code"] == "worker_crashed"
    assert [(await hooks.wait_job(i))["status"] for i in others] == ["succeeded"] * 3


async def test_memory_bomb_raises_inside_the_child(hooks: Server) -> None:
    job = await hooks.wait_job(hooks.upload(hooked("memory")).json()["job_id"])
    assert job["status"] == "failed" and job["error"]["code"] == "too_large"
    assert "TORI_MAX_MEMORY_MB" in job["error"]["message"]
    assert (await hooks.wait_job(hooks.upload(prose_pdf(1)).json()["job_id"]))[
        "status"
    ] == "succeeded"


async def test_cancel_queued_job_never_runs(start_server: StartServer) -> None:
    api = await start_server("serve", "--no-worker")
    db_url = api.db_url
    job_id = api.upload(prose_pdf(1)).json()["job_id"]
    r = api.client.delete(f"/jobs/{job_id}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["error"]["code"] == "cancelled"
    queue_status = await fetchval(
        api.db_url,
        "SELECT q.status::text FROM procrastinate_jobs q"
        " JOIN tori_jobs j ON j.procrastinate_job_id = q.id WHERE j.id = $1::uuid",
        job_id,
    )
    assert queue_status == "cancelled"
    worker = await start_server(db_url=db_url, TORI_STORAGE_DIR=str(api.storage))
    # A job submitted after it runs to the end; the cancelled one still never started.
    later = await worker.wait_job(worker.upload(prose_pdf(1)).json()["job_id"])
    assert later["status"] == "succeeded"
    job = worker.status(job_id)
    assert job["status"] == "cancelled" and job["attempts"] == 0 and job["started_at"] is None
    # Cancelling again (or cancelling a finished job) changes nothing.
    assert api.client.delete(f"/jobs/{job_id}").json()["status"] == "cancelled"
    assert api.client.delete(f"/jobs/{later['job_id']}").json()["status"] == "succeeded"


async def test_cancel_running_job_kills_its_work(start_server: StartServer) -> None:
    srv = await start_server(TORI_TEST_HOOKS="1", TORI_JOB_TIMEOUT_S="120")
    job_id = srv.upload(hooked("hang")).json()["job_id"]
    await wait_for(lambda: srv.status(job_id)["status"] == "running", 30, "the job to run")
    assert srv.client.delete(f"/jobs/{job_id}").json()["status"] == "cancelled"
    # The pool process was killed: with TORI_POOL_SIZE=2, two more jobs run side by side.
    others = [srv.upload(prose_pdf(1)).json()["job_id"] for _ in range(2)]
    assert [(await srv.wait_job(i))["status"] for i in others] == ["succeeded"] * 2
    job = srv.status(job_id)
    assert job["status"] == "cancelled"
    assert srv.client.get(f"/jobs/{job_id}/result").status_code == 409
    assert await results_of(srv.db_url, job_id) == 0


async def test_retry_failed_job_with_password(server: Server) -> None:
    from tests.pdfs import make_pdf

    job = await server.wait_job(
        server.upload(make_pdf(["Locked."], user_password="pw")).json()["job_id"]
    )
    assert job["error"]["code"] == "encrypted"
    r = server.client.post(f"/jobs/{job['job_id']}/retry", json={"password": "pw"})
    assert r.status_code == 202 and r.json()["status"] == "queued"
    done = await server.wait_job(job["job_id"])
    assert done["status"] == "succeeded" and done["attempts"] == 2 and done["error"] is None
    # Retrying a job that did not fail is a no-op.
    again = server.client.post(f"/jobs/{job['job_id']}/retry")
    assert again.status_code == 200 and again.json()["status"] == "succeeded"
    assert server.client.post("/jobs/00000000-0000-4000-8000-000000000000/retry").status_code == 404


async def test_sigkill_mid_job_is_recovered_by_another_worker(start_server: StartServer) -> None:
    api = await start_server("serve", "--no-worker")
    db_url = api.db_url
    api.storage.mkdir(parents=True, exist_ok=True)
    shared = {"TORI_STORAGE_DIR": str(api.storage), "TORI_TEST_HOOKS": "1"}

    async def workers() -> int:
        return await fetchval(db_url, "SELECT count(*) FROM procrastinate_workers")

    async def workers_are(n: int) -> bool:
        return await workers() >= n

    base = await workers()
    first = await start_server("worker", db_url=db_url, ready=False, **shared)
    await wait_for(lambda: workers_are(base + 1), 60, "worker A to register")
    job_id = api.upload(hooked("slow")).json()["job_id"]
    await wait_for(
        lambda: api.status(job_id)["status"] == "running", 30, "worker A to start the job"
    )
    per_copy = await workers() - base  # a copy runs several Procrastinate workers (webhooks…)
    await start_server("worker", db_url=db_url, ready=False, **shared)
    await wait_for(lambda: workers_are(base + 2 * per_copy), 60, "worker B to register")

    killed_at = time.monotonic()
    first.stop(signal.SIGKILL)  # the whole process group, as a crashed dyno
    job = await api.wait_job(job_id, timeout=90)
    recovered_in = time.monotonic() - killed_at
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1  # a dead worker's run gives its attempt back
    assert await results_of(db_url, job_id) == 1
    print(f"stalled job recovered and finished {recovered_in:.1f} s after SIGKILL")


async def test_a_document_that_kills_its_copy_fails_after_max_attempts(
    start_server: StartServer,
) -> None:
    """A dead copy's run gives its attempt back, but the death is counted: a document that
    kills every copy running it fails `worker_crashed` at TORI_MAX_ATTEMPTS deaths instead of
    being retried for ever."""
    api = await start_server("serve", "--no-worker")
    api.storage.mkdir(parents=True, exist_ok=True)
    shared = {
        "TORI_STORAGE_DIR": str(api.storage),
        "TORI_TEST_HOOKS": "1",
        "TORI_MAX_ATTEMPTS": "2",
        "TORI_SHUTDOWN_GRACE_S": "0",
    }
    job_id = api.upload(hooked("hang")).json()["job_id"]

    async def running_run(run: int) -> bool:
        query = "SELECT runs FROM tori_jobs WHERE id = $1::uuid AND status = 'running'"
        return await fetchval(api.db_url, query, job_id) == run

    for death in (1, 2):  # each copy takes the job (the second after recovering it), then dies
        copy = await start_server("worker", db_url=api.db_url, ready=False, **shared)
        await wait_for(lambda d=death: running_run(d), 90, f"copy {death} to run the job")
        copy.stop(signal.SIGKILL)
    await start_server("worker", db_url=api.db_url, ready=False, **shared)
    job = await api.wait_job(job_id, timeout=90)
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "worker_crashed"
    assert "died 2 times" in job["error"]["message"]
    deaths = "SELECT copy_deaths FROM tori_jobs WHERE id = $1::uuid"
    assert await fetchval(api.db_url, deaths, job_id) == 2


async def test_sigterm_lets_in_flight_job_finish(start_server: StartServer) -> None:
    srv = await start_server(TORI_TEST_HOOKS="1", TORI_SHUTDOWN_GRACE_S="20")
    job_id = srv.upload(hooked("slow")).json()["job_id"]
    await wait_for(lambda: srv.status(job_id)["status"] == "running", 30, "the job to run")
    assert srv.stop(signal.SIGTERM) == 0
    state = await fetchval(srv.db_url, "SELECT status FROM tori_jobs WHERE id = $1::uuid", job_id)
    assert state == "succeeded"


async def test_sigterm_past_grace_gives_the_job_back(start_server: StartServer) -> None:
    srv = await start_server(TORI_TEST_HOOKS="1", TORI_SHUTDOWN_GRACE_S="1")
    db_url = srv.db_url
    job_id = srv.upload(hooked("slow")).json()["job_id"]
    await wait_for(lambda: srv.status(job_id)["status"] == "running", 30, "the job to run")
    assert srv.stop(signal.SIGTERM) == 0
    assert (
        await fetchval(db_url, "SELECT status FROM tori_jobs WHERE id = $1::uuid", job_id)
        == "queued"
    )
    deaths = "SELECT copy_deaths FROM tori_jobs WHERE id = $1::uuid"
    assert await fetchval(db_url, deaths, job_id) == 0  # a graceful stop is not a death
    again = await start_server(
        db_url=db_url, TORI_TEST_HOOKS="1", TORI_STORAGE_DIR=str(srv.storage)
    )
    job = await again.wait_job(job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 1  # shutdown: attempt refunded


def pg_ctl(pgdata: Path, *args: str) -> None:
    from pgserver import _commands

    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs Postgres as its own user
    _commands.pg_ctl(["-w", *args], pgdata=pgdata, user=user, timeout=60)


async def test_database_restart_503_then_recovers_by_itself(data_dir: Path) -> None:
    # Embedded Postgres, owned by the service.
    srv = await Server("", data_dir).wait_ready(timeout=180)
    pgdata = data_dir / "pg"
    try:
        before = await srv.wait_job(srv.upload(prose_pdf(1)).json()["job_id"])
        assert before["status"] == "succeeded"
        with connect(ws_url(srv, "/ws")) as ws:
            pg_ctl(pgdata, "stop", "-m", "fast")
            down = srv.client.get(f"/jobs/{before['job_id']}")
            assert down.status_code == 503 and down.json()["error"]["code"] == "unavailable"
            files = storage_files(srv)
            refused = srv.upload(prose_pdf(3))
            assert refused.status_code == 503
            assert storage_files(srv) == files
            assert srv.client.get("/readyz").status_code == 503

            pg_ctl(pgdata, "start", "-o", '-h ""', "-o", f"-k {pgdata}", "-l", str(pgdata / "log"))
            await wait_for(lambda: srv.client.get("/readyz").status_code == 200, 60, "recovery")
            after = srv.upload(prose_pdf(2))
            assert after.status_code == 202
            job_id = after.json()["job_id"]
            ws.send(orjson.dumps({"subscribe": [job_id]}).decode())
            final = None
            while final is None:
                message = orjson.loads(ws.recv(timeout=60))
                if message.get("job_id") == job_id and message["status"] == "succeeded":
                    final = message
        assert srv.client.get(f"/jobs/{before['job_id']}").json()["status"] == "succeeded"
        assert srv.server_errors() == [] or all("503" in line for line in srv.server_errors())
    except BaseException:
        print(srv.log_text())  # the data dir (and its log) is removed after the test
        raise
    finally:
        srv.stop()
        with contextlib.suppress(Exception):
            pg_ctl(pgdata, "stop", "-m", "fast")  # the restarted server is not pgserver's to stop
