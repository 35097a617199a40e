"""A public-grade API on a real server: WebSocket tokens, dedup, lanes, schemathesis."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.helpers import SAFETY_TOKENS as TOKENS
from tests.helpers import Server, StartServer, ws_url
from tests.pdfs import prose_pdf


@pytest.fixture(scope="module")
async def secured_server(start_server: StartServer) -> Server:
    return await start_server(**TOKENS)


def test_websocket_takes_header_or_query_token(secured_server: Server) -> None:
    for path in ("/ws", "/ws?token=wrong"):  # refused like REST: a close code, not an HTTP 403
        with connect(ws_url(secured_server, path)) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    with connect(ws_url(secured_server, "/ws?token=tok-one")) as ws:
        ws.send('{"subscribe": ["00000000-0000-4000-8000-000000000000"]}')
        assert "not_found" in ws.recv(timeout=10)
    headers = {"Authorization": "Bearer tok-two"}
    with connect(ws_url(secured_server, "/ws"), additional_headers=headers):
        pass


async def test_dedup_answers_from_the_earlier_result(server: Server) -> None:
    data = prose_pdf(2, title="dedup me")
    original = await server.wait_job(server.upload(data).json()["job_id"])
    assert original["status"] == "succeeded"
    again = server.upload(data, "copy.pdf")
    assert again.status_code == 202
    assert again.json()["status"] == "succeeded" and again.json()["deduplicated"] is True
    job = server.status(again.json()["job_id"])
    assert job["deduplicated"] is True and job["pages_total"] == 2 and job["attempts"] == 0
    assert job["document"]["filename"] == "copy.pdf"
    result = server.client.get(f"/jobs/{job['job_id']}/result").json()
    assert result["job_id"] == job["job_id"] and result["deduplicated"] is True
    earlier = server.client.get(f"/jobs/{original['job_id']}/result").json()
    assert result["pages"] == earlier["pages"] and earlier["deduplicated"] is False

    forced = server.client.post(
        "/jobs", params={"reprocess": "true"}, files={"file": ("again.pdf", data)}
    )
    assert forced.json()["status"] == "queued"
    rerun = await server.wait_job(forced.json()["job_id"])
    assert rerun["status"] == "succeeded" and rerun["deduplicated"] is False
    assert rerun["attempts"] == 1


@pytest.fixture(scope="module")
async def importer_server(start_server: StartServer, import_dir: Path) -> Server:
    return await start_server(TORI_IMPORT_DIR=str(import_dir))


async def test_by_reference_submits_run_in_the_bulk_lane(importer_server: Server) -> None:
    srv = importer_server
    one = srv.client.post("/jobs", json={"path": "a.pdf"})
    assert one.status_code == 202
    job = await srv.wait_job(one.json()["job_id"])
    assert job["status"] == "succeeded" and job["lane"] == "bulk" and job["pages_total"] == 2
    assert job["document"]["filename"] == "a.pdf"
    many = srv.client.post(
        "/jobs", json={"paths": ["sub/b.pdf", "a.pdf"], "priority": "interactive"}
    )
    assert many.status_code == 202 and len(many.json()) == 2
    b = await srv.wait_job(many.json()[0]["job_id"])
    assert b["status"] == "succeeded" and b["lane"] == "interactive" and b["pages_total"] == 3
    # Each file was copied into the store once, by content (a.pdf twice = one copy).
    stored = sorted(p.name for p in srv.storage.rglob("*.pdf"))
    assert stored == sorted({f"{j['document']['sha256']}.pdf" for j in (job, b)})


# --- priority lanes --------------------------------------------------------------------------


async def test_interactive_overtakes_a_queued_backfill(
    start_server: StartServer, import_dir: Path
) -> None:
    api_only = await start_server("serve", "--no-worker", TORI_IMPORT_DIR=str(import_dir))
    bulk = [
        api_only.client.post(
            "/jobs", params={"reprocess": "true"}, json={"path": "sub/b.pdf"}
        ).json()["job_id"]
        for _ in range(20)
    ]
    urgent = api_only.upload(prose_pdf(1, title="urgent")).json()["job_id"]
    worker = await start_server(
        db_url=api_only.db_url,
        TORI_POOL_SIZE="1",
        TORI_IMPORT_DIR=str(import_dir),
        TORI_STORAGE_DIR=str(api_only.storage),
    )
    first = await worker.wait_job(urgent)
    assert first["status"] == "succeeded"
    started_bulk = [worker.status(i)["started_at"] for i in bulk]
    # The interactive job never waits behind the backlog. With its own slot (pool of 1 plus the
    # interactive spare), the bulk worker may start one back-fill job in the same instant.
    ahead = [s for s in started_bulk if s is not None and s < first["started_at"]]
    assert len(ahead) <= 1, ahead
    # ...and the back-fill still progresses.
    for i in bulk:
        assert (await worker.wait_job(i))["status"] == "succeeded", i
    listed = worker.client.get("/jobs", params={"lane": "bulk", "limit": 200}).json()["jobs"]
    assert {j["job_id"] for j in listed} == set(bulk)


@pytest.mark.skipif(
    shutil.which("schemathesis", path=os.path.dirname(sys.executable)) is None,
    reason="schemathesis is not installed",
)
def test_schemathesis_finds_no_server_errors(server: Server, tmp_path: Path) -> None:
    run = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "schemathesis"),
            "run",
            f"{server.base}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            "--max-examples",
            "15",
            "--exclude-path-regex",
            "^/ws",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # its cache stays out of the checkout
    )
    summary = run.stdout[-3000:]
    print(summary)
    assert run.returncode == 0, summary
    assert server.server_errors() == []
