"""A misbehaving client cannot take a real `serve` down: hang-ups, huge headers, stalled readers."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from websockets.sync.client import connect

from tests.helpers import Server, StartServer, fetchval, ws_url
from tests.pdfs import prose_pdf


@pytest.fixture(scope="module")
async def srv(start_server: StartServer) -> Server:
    return await start_server(TORI_SHUTDOWN_GRACE_S="5")


def _raw(srv: Server, request: bytes, *, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:  # a small window: the server's writes block, as for a slow or gone reader
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", srv.port))
    sock.sendall(request)
    return sock


def _reset(sock: socket.socket) -> None:
    """Hang up hard (RST), as a closed browser tab or a killed client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _answer(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


async def _idle_in_transaction(srv: Server) -> int:
    return await fetchval(
        srv.db_url,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )


async def test_aborted_result_downloads_leave_no_connection_behind(srv: Server) -> None:
    job = srv.upload(prose_pdf(300)).json()["job_id"]
    assert (await srv.wait_job(job))["status"] == "succeeded"
    request = f"GET /jobs/{job}/result HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    for _ in range(12):  # more than the API's pool of 10 connections
        sock = _raw(srv, request, rcvbuf=4096)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        _reset(sock)
    # A whole download afterwards: the server has handled the hang-ups before it.
    whole = srv.client.get(f"/jobs/{job}/result")
    assert whole.status_code == 200 and len(whole.json()["pages"]) == 300
    assert await _idle_in_transaction(srv) == 0
    for _ in range(12):
        assert srv.client.get("/jobs", timeout=10).status_code == 200
    assert srv.client.get("/readyz").status_code == 200
    assert srv.server_errors() == []


async def test_shutdown_ends_within_the_grace_while_a_reader_stalls(
    start_server: StartServer,
) -> None:
    other = await start_server(TORI_SHUTDOWN_GRACE_S="5")
    job = other.upload(prose_pdf(300)).json()["job_id"]
    await other.wait_job(job)
    request = f"GET /jobs/{job}/result HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    for _ in range(5):  # hung up mid-body
        sock = _raw(other, request, rcvbuf=4096)
        sock.recv(4096)
        _reset(sock)
    stalled = [_raw(other, request, rcvbuf=4096) for _ in range(3)]  # connected, never reading
    began = time.monotonic()
    other.stop(timeout=60)
    took = time.monotonic() - began
    for sock in stalled:
        sock.close()
    assert other.proc.returncode == 0, other.log_text()
    assert took < 5 + 10, f"SIGTERM took {took:.1f} s with stalled readers"


def test_an_oversized_request_head_is_refused(srv: Server) -> None:
    big = "x" * (100 * 1024)
    sock = _raw(srv, f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {big}\r\n\r\n".encode())
    answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b'"code":"bad_request"' in answer
    # The same for a long URL, and for too many fields (each small).
    sock = _raw(srv, f"GET /healthz?{big} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert _answer(sock).startswith(b"HTTP/1.1 431")
    fields = "".join(f"X-F{i}: 1\r\n" for i in range(150))
    sock = _raw(srv, f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n{fields}\r\n".encode())
    assert _answer(sock).startswith(b"HTTP/1.1 431")
    # Within the limits: a 20 KB cookie and 60 fields are fine.
    fields = "".join(f"X-F{i}: 1\r\n" for i in range(60))
    ok = srv.client.get("/healthz", headers={"Cookie": "a=" + "y" * 20_000})
    assert ok.status_code == 200
    sock = _raw(
        srv,
        f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n{fields}Connection: close\r\n\r\n".encode(),
    )
    assert _answer(sock).startswith(b"HTTP/1.1 200")


def test_a_slowly_sent_huge_header_never_grows_the_process(srv: Server) -> None:
    """The refusal comes once the limit is passed, not after the client sent it all."""
    sock = _raw(srv, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
    sent = 0
    try:
        while sent < 50 * 1024 * 1024:
            sock.sendall(b"z" * 65536)
            sent += 65536
    except OSError:
        pass  # the server closed the connection
    assert sent < 10 * 1024 * 1024, f"the server read {sent} bytes of one header"
    assert srv.client.get("/healthz").status_code == 200


async def test_websocket_clients_leave_no_traceback_at_shutdown(start_server: StartServer) -> None:
    """A client that disconnects normally, and one still connected when SIGTERM comes: the log
    gets no traceback and no unretrieved task exception."""
    other = await start_server()
    job = other.upload(prose_pdf(1)).json()["job_id"]
    await other.wait_job(job)
    with connect(ws_url(other, "/ws")) as ws:
        ws.send(f'{{"subscribe": ["{job}"]}}')
        assert '"snapshot"' in str(ws.recv(timeout=10))
    with connect(ws_url(other, "/ws")) as staying:
        staying.send(f'{{"subscribe": ["{job}"]}}')
        staying.recv(timeout=10)
        assert other.stop() == 0, other.log_text()
    log = other.log_path.read_text()
    assert "Traceback" not in log and "never retrieved" not in log, log[-3000:]
