"""Live status over WebSockets, with a real uvicorn server, Postgres NOTIFY and a real client."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.helpers import Server, StartServer, fetchval, wait_for, ws_url
from tests.pdfs import prose_pdf
from tori_ingest.http.hub import APPLICATION_NAME

TERMINAL = {"succeeded", "failed", "cancelled"}
ORDER = {"queued": 0, "running": 1, "succeeded": 2, "failed": 2, "cancelled": 2}


def recv(ws: ClientConnection, timeout: float = 60) -> dict[str, Any]:
    return orjson.loads(ws.recv(timeout=timeout))


def collect_until_terminal(ws: ClientConnection, ids: set[str]) -> dict[str, list[dict]]:
    """Messages per job id until every id has reached a terminal state."""
    seen: dict[str, list[dict]] = {i: [] for i in ids}
    open_ids = set(ids)
    deadline = time.monotonic() + 120
    while open_ids:
        message = recv(ws, timeout=max(0.1, deadline - time.monotonic()))
        assert message["type"] in ("snapshot", "update"), message
        seen[message["job_id"]].append(message)
        if message["status"] in TERMINAL:
            open_ids.discard(message["job_id"])
    return seen


def assert_well_ordered(messages: list[dict]) -> None:
    assert messages[0]["type"] == "snapshot"
    versions = [m["version"] for m in messages]
    assert versions == sorted(set(versions)), versions  # strictly increasing: never older
    states = [ORDER[m["status"]] for m in messages]
    assert states == sorted(states), [m["status"] for m in messages]
    done = [m["pages_done"] for m in messages if m["status"] == "running"]
    assert done == sorted(done)
    assert messages[-1]["status"] in TERMINAL
    assert sum(m["status"] in TERMINAL for m in messages) == 1


def test_single_job_socket_snapshot_events_then_close(server: Server) -> None:
    job_id = server.upload(prose_pdf(2)).json()["job_id"]
    with connect(ws_url(server, f"/ws/jobs/{job_id}")) as ws:
        messages = collect_until_terminal(ws, {job_id})[job_id]
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1000
    assert_well_ordered(messages)
    final = messages[-1]
    assert final["status"] == "succeeded"
    assert final["pages_done"] == final["pages_total"] == 2
    assert final.get("error") is None


def test_many_concurrent_jobs_complete_and_in_order(server: Server) -> None:
    with connect(ws_url(server, "/ws")) as ws:
        ids = [
            server.upload(prose_pdf(1 + i % 3, title=f"doc {i}")).json()["job_id"]
            for i in range(12)
        ]
        ws.send(orjson.dumps({"subscribe": ids}).decode())
        seen = collect_until_terminal(ws, set(ids))
    for job_id in ids:
        assert_well_ordered(seen[job_id])
        assert seen[job_id][-1]["status"] == "succeeded"


def test_failed_job_event_carries_the_error(server: Server) -> None:
    job_id = server.upload(b"%PDF-1.4\nnot really").json()["job_id"]
    with connect(ws_url(server, f"/ws/jobs/{job_id}")) as ws:
        final = collect_until_terminal(ws, {job_id})[job_id][-1]
    assert final["status"] == "failed"
    assert final["error"]["code"] == "corrupt_pdf"


async def test_unknown_ids_get_errors_without_closing(start_server: StartServer) -> None:
    srv = await start_server("serve", "--no-worker")  # the real job stays queued: a fixed script
    real = srv.upload(prose_pdf(1)).json()["job_id"]
    unknown = "00000000-0000-4000-8000-000000000000"
    with connect(ws_url(srv, "/ws")) as ws:
        ws.send(orjson.dumps({"subscribe": ["not-a-uuid", unknown, real]}).decode())
        ws.send("this is not json")
        messages = [recv(ws) for _ in range(4)]
        errors = [m for m in messages if m["type"] == "error"]
        assert {e["job_id"] for e in errors if e["job_id"]} == {"not-a-uuid", unknown}
        assert all(e["error"]["code"] in ("not_found", "bad_request") for e in errors)
        assert any(m["type"] == "snapshot" and m["job_id"] == real for m in messages)
        # Still open and serving: unsubscribe/subscribe round trip works.
        ws.send(orjson.dumps({"unsubscribe": [real]}).decode())
        ws.send(orjson.dumps({"subscribe": [real]}).decode())
        again = recv(ws)
        assert again["job_id"] == real and again["type"] == "snapshot"


def test_single_socket_for_unknown_job_closes_4404(server: Server) -> None:
    with connect(ws_url(server, "/ws/jobs/00000000-0000-4000-8000-000000000000")) as ws:
        assert recv(ws)["error"]["code"] == "not_found"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4404


async def test_job_run_by_another_copy_reaches_this_copys_subscriber(
    start_server: StartServer,
) -> None:
    api_only = await start_server("serve", "--no-worker")
    db_url = api_only.db_url
    api_only.storage.mkdir(parents=True, exist_ok=True)
    # A second copy with the worker: same database, same shared volume.
    worker = await start_server(
        "serve", db_url=db_url, TORI_STORAGE_DIR=str(api_only.storage), TORI_SPACY_MODEL="auto"
    )  # the full model: seconds of work on 300 pages, so progress has time to move
    job_id = api_only.upload(prose_pdf(300), "long.pdf").json()["job_id"]
    with connect(ws_url(api_only, f"/ws/jobs/{job_id}")) as ws:
        messages = collect_until_terminal(ws, {job_id})[job_id]
    assert_well_ordered(messages)
    assert messages[-1]["status"] == "succeeded" and messages[-1]["pages_done"] == 300
    progress = {m["pages_done"] for m in messages if m["status"] == "running"}
    assert len(progress - {0}) >= 2, messages  # a moving progress bar for a long PDF
    assert worker.server_errors() == [] and api_only.server_errors() == []


async def test_listener_reconnects_and_resyncs(start_server: StartServer) -> None:
    srv = await start_server("serve", "--no-worker")
    job_id = srv.upload(prose_pdf(1)).json()["job_id"]  # stays queued: nothing runs it
    with connect(ws_url(srv, "/ws")) as ws:
        ws.send(orjson.dumps({"subscribe": [job_id]}).decode())
        first = recv(ws)
        assert first["type"] == "snapshot" and first["status"] == "queued"

        killed = await fetchval(
            srv.db_url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1 AND datname = current_database()",
            APPLICATION_NAME,
        )
        assert killed == 1
        resync = recv(ws, timeout=30)  # a fresh snapshot after the reconnect
        assert resync["type"] == "snapshot" and resync["job_id"] == job_id

        # Changes after the reconnect still arrive.
        async def listening() -> bool:
            return bool(
                await fetchval(
                    srv.db_url,
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                    " AND datname = current_database()",
                    APPLICATION_NAME,
                )
            )

        await wait_for(listening, 30, "the listener to be back")
        await fetchval(
            srv.db_url, "UPDATE tori_jobs SET status = 'cancelled' WHERE id = $1::uuid", job_id
        )
        update = recv(ws, timeout=30)
        assert update["type"] == "update" and update["status"] == "cancelled"
        assert update["version"] > resync["version"]
