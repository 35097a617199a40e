"""Bounded everything: no client can grow the server's memory or work without limit, and the
pool's progress channel survives a killed pool process."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tori_ingest.core.settings import Settings
from tori_ingest.http import ws
from tori_ingest.http.app import build_api
from tori_ingest.http.context import Context
from tori_ingest.worker.pool import Pool

from .conftest import ApiClient, Server, job_count, storage_files, ws_url
from .pdfs import make_pdf, prose_pdf


def test_a_client_that_keeps_sending_garbage_is_closed(server: Server) -> None:
    with connect(ws_url(server, "/ws")) as client:
        for _ in range(ws.MAX_BAD_MESSAGES + 5):
            try:
                client.send("not json")
            except ConnectionClosed:
                break
        errors = 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                message = orjson.loads(client.recv(timeout=30))
                assert message["type"] == "error"
                errors += 1
        assert closed.value.rcvd is not None and closed.value.rcvd.code == ws.CLOSE_POLICY
        assert errors <= ws.MAX_BAD_MESSAGES


def test_bad_ids_in_one_message_are_one_error(server: Server) -> None:
    with connect(ws_url(server, "/ws")) as client:
        client.send(orjson.dumps({"subscribe": [f"bad-{i}" for i in range(500)]}).decode())
        message = orjson.loads(client.recv(timeout=30))
        assert message["type"] == "error" and "500 invalid ids" in message["error"]["message"]
        client.send(orjson.dumps({"subscribe": ["also-bad"]}).decode())
        assert "1 invalid ids" in orjson.loads(client.recv(timeout=30))["error"]["message"]


def test_connections_beyond_the_cap_are_turned_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws, "_open_connections", ws.MAX_CONNECTIONS)
    app = build_api(Context(Settings.load({}), None, None))  # type: ignore[arg-type]
    with TestClient(app) as client, client.websocket_connect("/ws") as socket_:
        with pytest.raises(WebSocketDisconnect) as closed:
            socket_.receive_text()
        assert closed.value.code == ws.CLOSE_TRY_LATER


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


async def test_results_are_streamed_with_the_summary_first(server: Server) -> None:
    job = await server.wait_job(server.upload(prose_pdf(30)).json()["job_id"])
    r = server.client.get(f"/jobs/{job['job_id']}/result")
    assert r.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.headers
    assert r.text.index('"document"') < r.text.index('"pages"')
    result = r.json()
    assert [p["number"] for p in result["pages"]] == list(range(1, 31))
    text = server.client.get(f"/jobs/{job['job_id']}/result", params={"format": "text"}).text
    assert text.split("\f") == [p["text"] for p in result["pages"]]


async def test_progress_survives_garbage_and_a_killed_pool_process(tmp_path: Path) -> None:
    # pypdf: a 400-page job then lasts over a second, several progress intervals (PDFium
    # reads it in a fraction of one, and a job shorter than an interval reports nothing)
    settings = Settings.load(
        {"TORI_POOL_SIZE": "2", "TORI_TEST_HOOKS": "1", "TORI_EXTRACTOR": "pypdf"}
    )
    pool = Pool(settings, "blank:en")
    progress: list[tuple[str, int, int]] = []
    pool.on_progress = lambda job, done, total: progress.append((job, done, total))
    pool.start()
    try:
        await asyncio.wait_for(pool.wait_warm(), 60)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as rogue:
            rogue.sendto(b"\x00 not an event", pool._events.address)
        crash = tmp_path / "crash.pdf"
        data = prose_pdf(1)
        head, rest = data.split(b"\n", 1)
        crash.write_bytes(head + b"\n%tori-test-crash\n" + rest)
        long_doc = tmp_path / "long.pdf"
        long_doc.write_bytes(prose_pdf(400))
        outcomes = await asyncio.gather(
            pool.run("crash", str(crash), None),
            pool.run("long", str(long_doc), None),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], Exception) and outcomes[1].document.pages == 400
        reports = [p for p in progress if p[0] == "long"]
        assert len(reports) >= 2 and reports[-1][1] > reports[0][1]
    finally:
        await asyncio.to_thread(pool.stop)
