"""Access through a real `serve`: WebSocket tickets, no secret in a log, erase, CORS, local-only."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.helpers import ACCESS_APP as APP
from tests.helpers import ACCESS_KEY as KEY
from tests.helpers import ACCESS_OPS as OPS
from tests.helpers import ACCESS_ROOT as ROOT
from tests.helpers import ACCESS_TOKENS as TOKENS
from tests.helpers import Server, StartServer, ws_url
from tests.helpers import unique_text_pdf as pdf
from tests.pdfs import make_pdf, prose_pdf

# --- with a real server: WebSockets, logs, erase, the local-only guard ---------------------------


@pytest.fixture(scope="module")
async def secured(start_server: StartServer) -> Server:
    srv = await start_server(
        TORI_API_TOKENS=TOKENS,
        TORI_SECRET_KEY=KEY,
        TORI_ADMIN_TOKENS="root",
        TORI_CORS_ORIGINS="https://app.example",
    )
    srv.client.headers.update(ROOT)  # the helpers (wait_job) read as an admin
    return srv


def ws_messages(url: str, until_status: str = "succeeded") -> list[dict]:
    seen = []
    with connect(url) as ws:
        while True:
            message = orjson.loads(ws.recv(timeout=60))
            seen.append(message)
            if message.get("status") == until_status or message["type"] == "error":
                return seen


async def test_websockets_with_a_ticket(secured: Server) -> None:
    job = secured.client.post("/jobs", files={"file": ("a.pdf", prose_pdf(1))}, headers=APP).json()
    messages = ws_messages(ws_url(secured, job["links"]["ws"]))
    assert messages[0]["type"] == "snapshot" and messages[-1]["status"] == "succeeded"
    with connect(ws_url(secured, f"/ws?ticket={job['ticket']}")) as ws:
        ws.send(orjson.dumps({"subscribe": [str(uuid.uuid4()), job["job_id"]]}).decode())
        first, second = (orjson.loads(ws.recv(timeout=30)) for _ in range(2))
        assert {first["type"], second["type"]} == {"error", "snapshot"}
    for path in (f"/ws/jobs/{job['job_id']}?ticket=forged", f"/ws/jobs/{uuid.uuid4()}"):
        with connect(ws_url(secured, path)) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_no_secret_reaches_the_log(secured: Server) -> None:
    locked = make_pdf(["Locked."], user_password="pdf-pass-9")
    job = secured.client.post(
        "/jobs", files={"file": ("l.pdf", locked)}, data={"password": "pdf-pass-9"}, headers=APP
    ).json()
    await secured.wait_job(job["job_id"])
    secured.client.get(f"/jobs/{job['job_id']}", params={"ticket": job["ticket"]})
    secured.client.get("/jobs", params={"token": "ops-secret-2"})  # a token in a REST query
    with connect(ws_url(secured, "/ws?token=app-secret-1")):
        pass
    with connect(ws_url(secured, f"/ws/jobs/{job['job_id']}?ticket={job['ticket']}")) as ws:
        ws.recv(timeout=10)
    log = secured.log_path.read_text()
    assert "token=***" in log and "ticket=***" in log  # the lines are there, redacted
    for secret in ("app-secret-1", "ops-secret-2", job["ticket"], "pdf-pass-9", KEY):
        assert secret not in log, secret


async def test_erase_takes_the_document_back(secured: Server) -> None:
    data = pdf()  # bytes no other job shares (a shared file would stay)
    key = {"Idempotency-Key": f"erase-{uuid.uuid4().hex}", **APP}
    job = secured.client.post("/jobs", files={"file": ("e.pdf", data)}, headers=key).json()
    done = await secured.wait_job(job["job_id"])
    stored = list(secured.storage.rglob(f"{done['document']['sha256']}.pdf"))
    assert stored, "the upload is stored"
    path = f"/jobs/{job['job_id']}"
    assert secured.client.delete(path, params={"erase": "true"}, headers=OPS).status_code == 404
    r = secured.client.delete(path, params={"erase": "true"}, headers=APP)
    assert r.status_code == 200 and r.json() == {"job_id": job["job_id"], "erased": True}
    for url in (path, f"{path}/result"):
        gone = secured.client.get(url, headers=APP)
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "expired", url
    assert not stored[0].exists()
    again = secured.client.post("/jobs", files={"file": ("e.pdf", data)}, headers=key)
    assert again.status_code == 202 and again.json()["job_id"] != job["job_id"]


async def test_cors_preflight_for_ticket_routes(secured: Server) -> None:
    r = secured.client.options(
        f"/jobs/{uuid.uuid4()}/result",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example"


async def test_local_service_refuses_foreign_hosts_and_origins(start_server: StartServer) -> None:
    srv = await start_server(TORI_CORS_ORIGINS="https://app.example")  # auth off, loopback
    assert srv.client.get("/jobs").status_code == 200
    rebound = srv.client.get("/jobs", headers={"Host": "evil.example"})
    assert rebound.status_code == 401 and "TORI_API_TOKENS" in rebound.json()["error"]["message"]
    drive_by = srv.client.post(
        "/jobs", files={"file": ("a.pdf", pdf())}, headers={"Origin": "https://evil.example"}
    )
    assert drive_by.status_code == 401
    allowed = srv.client.get("/jobs", headers={"Origin": "https://app.example"})
    assert allowed.status_code == 200
    async with httpx.AsyncClient(base_url=f"http://localhost:{srv.port}") as by_name:
        assert (await by_name.get("/jobs")).status_code == 200
