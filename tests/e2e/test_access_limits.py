"""What a caller may hold, on a real `serve`: empty secrets, WebSocket slots, redaction, proxies."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.helpers import A, B, StartServer, ws_url
from tests.pdfs import prose_pdf


def test_serve_with_an_empty_secret_stops_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "TORI_API_TOKENS": "app:s1,ops:", "TORI_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "tori_ingest", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "token 'ops' has an empty secret" in done.stderr
    assert "Traceback" not in done.stderr and "s1" not in done.stderr


# --- 5. WebSocket slots per caller --------------------------------------------------------------


async def test_one_caller_cannot_hold_every_websocket_slot(start_server: StartServer) -> None:
    srv = await start_server(TORI_API_TOKENS="a:sa,b:sb", TORI_WS_PER_CALLER="3")
    job = srv.client.post(
        "/jobs", files={"file": ("a.pdf", prose_pdf(1), "application/pdf")}, headers=A
    ).json()
    by_ticket = ws_url(srv, f"/ws?ticket={job['ticket']}")
    with contextlib.ExitStack() as stack:
        for url, headers in ((ws_url(srv, "/ws"), A), (by_ticket, {})):
            for _ in range(3):
                stack.enter_context(connect(url, additional_headers=headers))
            with connect(url, additional_headers=headers) as over:
                with pytest.raises(ConnectionClosed) as closed:
                    over.recv(timeout=10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        with connect(ws_url(srv, "/ws"), additional_headers=B) as other:  # another token: fine
            other.send('{"subscribe": []}')
            other.ping().wait(10)
    with connect(ws_url(srv, "/ws"), additional_headers=A) as again:  # slots given back
        again.ping().wait(10)


# --- 7, 10. no credential in any log line, at any level -----------------------------------------


async def test_debug_logs_carry_no_credential(start_server: StartServer) -> None:
    srv = await start_server(TORI_API_TOKENS="a:sa-secret", TORI_LOG_LEVEL="DEBUG")
    job = srv.client.post(
        "/jobs",
        files={"file": ("a.pdf", prose_pdf(1), "application/pdf")},
        headers={"Authorization": "Bearer sa-secret"},
    ).json()
    ticket = job["ticket"]
    headers = {
        "Authorization": "Bearer sa-secret",
        "X-Tori-Ticket": ticket,
        "Cookie": "tori_session=cookie-secret-value",
    }
    with connect(ws_url(srv, "/ws"), additional_headers=headers) as ws:
        ws.send('{"subscribe": []}')
    for query in (f"tick%65t={ticket}", "%74oken=sa-secret", f"TICKET={ticket}"):
        srv.client.get(f"/jobs/{job['job_id']}?{query}")
    srv.client.get("/jobs?api_key=key-secret-value")
    log = srv.log_path.read_text()
    assert "DEBUG" in log or '"level":"debug"' in log.lower()  # DEBUG lines were written
    for secret in ("sa-secret", ticket, "cookie-secret-value", "key-secret-value"):
        assert secret not in log, secret


async def test_x_forwarded_for_counts_only_from_the_named_proxies(
    start_server: StartServer,
) -> None:
    srv = await start_server(TORI_RATE_LIMIT="3/hour")
    codes = [
        srv.client.get("/jobs", headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 200, 429]  # one address (loopback), whatever the header says
    trusting = await start_server(TORI_RATE_LIMIT="3/hour", FORWARDED_ALLOW_IPS="127.0.0.1")
    codes = [
        trusting.client.get("/jobs", headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 200, 200]  # four clients behind the named proxy
