"""SPEC §17 for real: a long document in page-range parts through the queue (TORI_SPLIT_PAGES),
merged into the result an unsplit run gives; cancel, timeout and a dead copy per part."""

from __future__ import annotations

import signal
import uuid
from typing import Any

import orjson
import pytest
from websockets.sync.client import connect

from tests.helpers import Api, ApiClient, Server, StartServer, fetchval, wait_for, warm_pool, ws_url
from tests.pdfs import hooked, prose_pdf
from tori_ingest.worker.context import WorkerContext
from tori_ingest.worker.job_run import Runner

SPLIT = {"TORI_SPLIT_PAGES": "4", "TORI_TEST_HOOKS": "1", "TORI_JOB_TIMEOUT_S": "4"}
UNCOMPARABLE = {"job_id", "timings_ms"}


@pytest.fixture(scope="module")
async def split(start_server: StartServer) -> Server:
    return await start_server(**SPLIT)


def result(srv: Server, job_id: str) -> dict[str, Any]:
    body = srv.client.get(f"/jobs/{job_id}/result").json()
    return {k: v for k, v in body.items() if k not in UNCOMPARABLE}


async def parts_left(srv: Server | Api, job_id: str) -> int:
    query = "SELECT count(*) FROM tori_job_parts WHERE job_id = $1::uuid"
    return int(await fetchval(srv.db_url, query, job_id))


async def test_a_split_job_gets_the_unsplit_result(
    split: Server, start_server: StartServer
) -> None:
    whole = await start_server(TORI_SPLIT_PAGES="0")
    data = prose_pdf(12)
    unsplit = await whole.wait_job(whole.upload(data, "long.pdf").json()["job_id"])
    parted = await split.wait_job(split.upload(data, "long.pdf").json()["job_id"])
    assert unsplit["status"] == parted["status"] == "succeeded", parted
    a, b = result(whole, unsplit["job_id"]), result(split, parted["job_id"])
    for field in a:
        assert a[field] == b[field], field
    assert parted["pages_done"] == parted["pages_total"] == 12
    log = split.log_path.read_text()
    assert '"event":"job.split"' in log and '"event":"job.merged"' in log  # it was split
    assert await parts_left(split, parted["job_id"]) == 0  # no text outlives the job


async def test_a_running_split_job_lists_its_parts(split: Server) -> None:
    job_id = split.upload(hooked("slow=2", pages=12)).json()["job_id"]
    seen: list[dict[str, Any]] = []
    with connect(ws_url(split, "/ws")) as ws:  # the WebSocket state carries them too
        ws.send(orjson.dumps({"subscribe": [job_id]}).decode())
        while not any(m.get("status") == "succeeded" for m in seen):
            seen.append(orjson.loads(ws.recv(timeout=60)))
    live = [m["parts"] for m in seen if m.get("parts")]
    assert live and all(len(p) == 8 for p in live if p[0]["phase"] == "read")
    assert any(part["status"] == "running" and part["copy"] for p in live for part in p)
    assert seen[-1]["parts"] is None  # a finished job has none
    job_id = split.upload(hooked("slow=2", pages=12)).json()["job_id"]

    def listed() -> list[dict[str, Any]] | None:
        body = split.status(job_id)
        return body.get("parts") if body["status"] == "running" else None

    found = await wait_for(listed, 30, "the job's parts")
    pages = [(p["first_page"], p["last_page"]) for p in found]
    assert pages == [(1, 2), (3, 4), (5, 6), (7, 8), (9, 9), (10, 10), (11, 11), (12, 12)]
    assert {p["phase"] for p in found} == {"read"}
    assert any(p["status"] == "running" and p["copy"] for p in found)
    job = await split.wait_job(job_id)
    assert job["status"] == "succeeded" and "parts" not in job


async def test_cancel_stops_every_part(split: Server) -> None:
    job_id = split.upload(hooked("hang", pages=12)).json()["job_id"]

    def running_parts() -> bool:
        body = split.status(job_id)
        return sum(p["status"] == "running" for p in body.get("parts") or []) >= 2

    await wait_for(running_parts, 30, "parts to run")
    assert split.client.delete(f"/jobs/{job_id}").json()["status"] == "cancelled"
    assert await parts_left(split, job_id) == 0
    # The hanging parts' processes were killed: bulk work (which shares the processes parts
    # use, not the spare one kept for uploads) runs at once.
    bulk = split.upload(prose_pdf(1), priority="bulk").json()["job_id"]
    after = await split.wait_job(bulk, timeout=60)
    assert after["status"] == "succeeded"
    assert split.status(job_id)["status"] == "cancelled"


async def test_a_part_past_the_timeout_fails_the_job_with_its_pages(split: Server) -> None:
    job = await split.wait_job(split.upload(hooked("slow=6", pages=12)).json()["job_id"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "timeout"
    assert "(pages " in job["error"]["message"]


def events(srv: Server, job_id: str, name: str) -> list[dict[str, Any]]:
    """The service's log lines of one kind about one job."""
    lines = [orjson.loads(line) for line in srv.log_path.read_text().splitlines() if line]
    return [e for e in lines if e.get("event") == name and e.get("job_id") == job_id]


async def test_a_part_whose_process_crashes_is_retried_alone(split: Server) -> None:
    job_id = split.upload(hooked("part-crash=once", pages=12, unique=True)).json()["job_id"]
    job = await split.wait_job(job_id, timeout=90)
    assert job["status"] == "succeeded", job
    assert job["pages_done"] == 12
    [crash] = events(split, job_id, "part.crashed")
    assert (crash["phase"], crash["idx"], crash["deaths"]) == ("read", 0, 1)
    [planned] = events(split, job_id, "job.split")
    done = [e["pages"] for e in events(split, job_id, "part.done") if e["phase"] == "read"]
    assert len(done) == len(set(done)) == planned["parts"]  # each read part ended once


async def test_a_part_that_kills_its_process_every_time_fails_the_job(split: Server) -> None:
    job = await split.wait_job(split.upload(hooked("part-crash", pages=12)).json()["job_id"], 120)
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "worker_crashed"
    assert "died 3 times (TORI_MAX_ATTEMPTS)" in job["error"]["message"]
    assert "(pages 1-" in job["error"]["message"]


async def test_a_copy_killed_while_it_runs_a_part_costs_only_that_part(
    start_server: StartServer,
) -> None:
    api = await start_server("serve", "--no-worker")
    api.storage.mkdir(parents=True, exist_ok=True)
    shared = {**SPLIT, "TORI_STORAGE_DIR": str(api.storage), "TORI_SHUTDOWN_GRACE_S": "0"}
    shared["TORI_JOB_TIMEOUT_S"] = "60"
    doomed = await start_server("worker", db_url=api.db_url, ready=False, **shared)
    job_id = api.upload(hooked("slow=3", pages=12)).json()["job_id"]

    async def running_on_doomed() -> bool:
        query = "SELECT count(*) FROM tori_job_parts WHERE job_id = $1::uuid AND status = 'running'"
        return int(await fetchval(api.db_url, query, job_id)) > 0

    await wait_for(running_on_doomed, 60, "a part to run")
    await start_server("worker", db_url=api.db_url, ready=False, **shared)
    doomed.stop(signal.SIGKILL)
    job = await api.wait_job(job_id, timeout=120)
    assert job["status"] == "succeeded", job
    assert job["pages_done"] == 12
    deaths = "SELECT coalesce(sum(copy_deaths), 0) FROM tori_job_parts WHERE job_id = $1::uuid"
    assert await fetchval(api.db_url, deaths, job_id) == 0  # rows are gone with the job


async def test_lanes_hold_under_a_split_bulk_job(split: Server) -> None:
    """Its parts fill the processes bulk work may use: an upload still gets the pool's spare
    process at once, and a bulk job submitted after it is not queued behind all its parts."""
    big = split.upload(hooked("slow=3", pages=12), priority="bulk").json()["job_id"]
    await wait_for(lambda: split.status(big).get("parts"), 30, "the bulk job's parts")
    small = split.upload(prose_pdf(1), priority="bulk").json()["job_id"]
    upload = await split.wait_job(split.upload(prose_pdf(1)).json()["job_id"], timeout=30)
    assert upload["status"] == "succeeded"
    assert split.status(big)["status"] == "running"  # the upload did not wait for it
    later, first = await split.wait_job(small), await split.wait_job(big)
    assert later["status"] == first["status"] == "succeeded"
    assert later["finished_at"] < first["finished_at"]  # not starved behind every part


async def test_a_long_job_is_split_only_when_no_other_job_waits(api_client: ApiClient) -> None:
    """Parts are for processes that would idle. One worker's runner, in this process, on a
    queue nobody else takes from: a long bulk job alone is split; another long bulk job runs
    whole while the first one's parts wait; an upload is split whatever bulk work waits."""
    async with api_client(TORI_SPLIT_PAGES="4") as api, warm_pool() as pool:
        runner = Runner(WorkerContext(api.ctx.settings, api.ctx.db, api.ctx.storage, pool))

        async def run(priority: str) -> str:
            data = prose_pdf(12, title=f"Long {uuid.uuid4()}")
            job_id = (await api.upload(data, priority=priority)).json()["job_id"]
            await runner.run(uuid.UUID(job_id))
            return job_id

        first = await run("bulk")
        assert await parts_left(api, first) >= 8  # split: its read parts wait in the queue
        second = await run("bulk")
        assert (await api.get(f"/jobs/{second}")).json()["status"] == "succeeded"
        assert await parts_left(api, second) == 0  # run whole: the first one's parts wait
        upload = await run("interactive")
        assert await parts_left(api, upload) >= 8  # bulk work never holds an upload back
