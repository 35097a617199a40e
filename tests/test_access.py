"""Access a browser app can trust: named tokens own their jobs, tickets read one job, nothing
secret in a log, erase, local-only guard, rate limits and admission control."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tori_ingest.core.settings import Settings
from tori_ingest.http.auth import Tickets

from .conftest import Api, ApiClient, Server, StartServer, ws_url
from .pdfs import make_pdf, prose_pdf

TOKENS = "app:app-secret-1,ops:ops-secret-2,root:root-secret-3"
APP = {"Authorization": "Bearer app-secret-1"}
OPS = {"Authorization": "Bearer ops-secret-2"}
ROOT = {"Authorization": "Bearer root-secret-3"}
KEY = "a-ticket-signing-key"


def pdf() -> bytes:
    return make_pdf([f"Unique text {uuid.uuid4().hex}."])


@pytest.fixture(scope="module")
async def owned(api_client: ApiClient) -> AsyncIterator[Api]:
    async with api_client(
        TORI_API_TOKENS=TOKENS, TORI_ADMIN_TOKENS="root", TORI_SECRET_KEY=KEY
    ) as api:
        yield api


async def submit(api: Api, headers: dict[str, str], **fields: str) -> dict:
    r = await api.post(
        "/jobs", files={"file": ("a.pdf", pdf(), "application/pdf")}, data=fields, headers=headers
    )
    assert r.status_code == 202, r.text
    return r.json()


async def test_a_job_belongs_to_the_token_that_created_it(owned: Api) -> None:
    job = await submit(owned, APP)
    path = f"/jobs/{job['job_id']}"
    assert (await owned.get(path, headers=APP)).status_code == 200
    assert (await owned.get(path, headers=ROOT)).status_code == 200  # an admin sees all
    for method, url in (("GET", path), ("GET", f"{path}/result"), ("GET", f"{path}/file"),
                        ("DELETE", path),
                        ("POST", f"{path}/retry")):  # fmt: skip
        r = await owned.request(method, url, headers=OPS)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, url)
    listed = {j["job_id"] for j in (await owned.get("/jobs", headers=OPS)).json()["jobs"]}
    assert job["job_id"] not in listed
    admin = {j["job_id"] for j in (await owned.get("/jobs", headers=ROOT)).json()["jobs"]}
    assert job["job_id"] in admin


async def test_idempotency_keys_are_per_owner(owned: Api) -> None:
    data = pdf()
    files = {"file": ("a.pdf", data, "application/pdf")}
    key = {"Idempotency-Key": "same-key"}
    first = await owned.post("/jobs", files=files, headers={**APP, **key})
    other = await owned.post("/jobs", files=files, headers={**OPS, **key})
    again = await owned.post("/jobs", files=files, headers={**APP, **key})
    assert (first.status_code, other.status_code, again.status_code) == (202, 202, 200)
    assert first.json()["job_id"] == again.json()["job_id"] != other.json()["job_id"]


async def test_owner_ref_tags_and_filters(owned: Api) -> None:
    mine = await submit(owned, APP, owner_ref="user-17")
    await submit(owned, APP, owner_ref="user-18")
    listed = (await owned.get("/jobs", params={"owner_ref": "user-17"}, headers=APP)).json()
    assert [j["job_id"] for j in listed["jobs"]] == [mine["job_id"]]
    assert listed["jobs"][0]["owner_ref"] == "user-17"


async def test_tickets_read_one_job_and_nothing_else(owned: Api) -> None:
    job, other = await submit(owned, APP), await submit(owned, APP)
    ticket = job["ticket"]
    assert ticket and job["links"]["ws"] == f"/ws/jobs/{job['job_id']}?ticket={ticket}"
    path = f"/jobs/{job['job_id']}"
    assert (await owned.get(path, params={"ticket": ticket})).status_code == 200
    assert (await owned.get(path, headers={"X-Tori-Ticket": ticket})).status_code == 200
    result = await owned.get(f"{path}/result", params={"ticket": ticket})
    assert result.status_code == 409  # allowed, just not ready (no worker here)
    original = await owned.get(f"{path}/file", params={"ticket": ticket})
    assert original.status_code == 200 and original.content.startswith(b"%PDF-")
    refused = [
        ("DELETE", path, ticket),  # a ticket cannot cancel
        ("POST", f"{path}/retry", ticket),
        ("GET", "/jobs", ticket),  # nor list
        ("GET", f"/jobs/{other['job_id']}", ticket),  # nor read another job
        ("GET", path, ticket[:-2] + ("AA" if not ticket.endswith("AA") else "BB")),  # tampered
        ("GET", path, other["ticket"]),  # another job's ticket
        (
            "GET",
            path,
            Tickets(settings()).issue(job["job_id"], "app", now=time.time() - 7200),
        ),  # expired
    ]
    for method, url, t in refused:
        r = await owned.request(method, url, params={"ticket": t})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", (method, url)


def settings(**env: str) -> Settings:
    return Settings.load({"TORI_API_TOKENS": TOKENS, "TORI_SECRET_KEY": KEY, **env})


async def test_every_copy_accepts_every_copys_tickets(owned: Api, api_client: ApiClient) -> None:
    job = await submit(owned, APP)
    async with api_client(TORI_API_TOKENS=TOKENS, TORI_SECRET_KEY=KEY) as copy:
        r = await copy.get(f"/jobs/{job['job_id']}", params={"ticket": job["ticket"]})
        assert r.status_code == 200
    async with api_client(TORI_API_TOKENS=TOKENS, TORI_SECRET_KEY="another-key") as stranger:
        r = await stranger.get(f"/jobs/{job['job_id']}", params={"ticket": job["ticket"]})
        assert r.status_code == 401


def test_unset_secret_key_is_derived_from_the_tokens() -> None:
    one, two = (
        Tickets(Settings.load({"TORI_API_TOKENS": TOKENS})),
        Tickets(Settings.load({"TORI_API_TOKENS": TOKENS})),
    )
    job = uuid.uuid4()
    ticket = one.issue(job, "app")
    assert ticket is not None and two.job_of(ticket) == str(job)  # copies agree
    rotated = Tickets(Settings.load({"TORI_API_TOKENS": "app:new-secret"}))
    assert rotated.job_of(ticket) is None


def test_a_ticket_ends_with_its_token_whatever_the_key() -> None:
    """Rotating the creating token's secret, or removing its name, ends its tickets even
    with a fixed TORI_SECRET_KEY; another token's rotation does not."""
    job = uuid.uuid4()
    ticket = Tickets(settings()).issue(job, "app")
    assert ticket is not None and Tickets(settings()).job_of(ticket) == str(job)
    others_rotated = "app:app-secret-1,ops:ops-new,root:root-secret-3"
    assert Tickets(settings(TORI_API_TOKENS=others_rotated)).job_of(ticket) == str(job)
    for tokens in ("app:app-secret-9,ops:ops-secret-2", "ops:ops-secret-2,root:root-secret-3"):
        assert Tickets(settings(TORI_API_TOKENS=tokens)).job_of(ticket) is None


async def test_rate_limit_is_shared_by_copies(api_client: ApiClient) -> None:
    env = {"TORI_API_TOKENS": "a:sa,b:sb", "TORI_RATE_LIMIT": "4/minute"}
    async with api_client(**env) as one, api_client(**env) as two:
        answers = [
            (await (one if i % 2 else two).get("/jobs", headers={"Authorization": "Bearer sa"}))
            for i in range(6)
        ]
        codes = [r.status_code for r in answers]
        assert codes[:4] == [200] * 4 and codes[4:] == [429, 429], codes
        assert answers[4].json()["error"]["code"] == "rate_limited"
        assert 1 <= int(answers[4].headers["Retry-After"]) <= 60
        other = await one.get("/jobs", headers={"Authorization": "Bearer sb"})
        assert other.status_code == 200  # per token
        assert (await one.get("/healthz")).status_code == 200  # probes are never limited


async def test_bulk_admission_control_spares_interactive_uploads(api_client: ApiClient) -> None:
    async with api_client(TORI_BULK_BACKLOG_MAX="2") as api:
        for _ in range(2):
            assert (await api.upload(pdf(), priority="bulk")).status_code == 202
        full = await api.upload(pdf(), priority="bulk")
        assert full.status_code == 429 and full.headers["Retry-After"] == "60"
        assert (await api.upload(pdf())).status_code == 202


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


async def test_nul_in_a_query_value_is_a_400(owned: Api) -> None:
    r = await owned.get("/jobs", params={"owner_ref": "a\x00b"}, headers=APP)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
