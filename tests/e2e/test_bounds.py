"""Bounded WebSockets and results on a real `serve`; progress survives a killed pool process."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.helpers import Server, ws_url
from tests.pdfs import prose_pdf
from tori_ingest.core.settings import Settings
from tori_ingest.http import ws
from tori_ingest.worker.pool import Pool


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
