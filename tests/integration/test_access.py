"""Access in-process: jobs owned by their token, idempotency, tickets, limits, admission."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tests.helpers import ACCESS_APP as APP
from tests.helpers import ACCESS_KEY as KEY
from tests.helpers import ACCESS_OPS as OPS
from tests.helpers import ACCESS_ROOT as ROOT
from tests.helpers import ACCESS_TOKENS as TOKENS
from tests.helpers import Api, ApiClient
from tests.helpers import access_settings as settings
from tests.helpers import unique_text_pdf as pdf
from tori_ingest.http.auth import Tickets


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


async def test_every_copy_accepts_every_copys_tickets(owned: Api, api_client: ApiClient) -> None:
    job = await submit(owned, APP)
    async with api_client(TORI_API_TOKENS=TOKENS, TORI_SECRET_KEY=KEY) as copy:
        r = await copy.get(f"/jobs/{job['job_id']}", params={"ticket": job["ticket"]})
        assert r.status_code == 200
    async with api_client(TORI_API_TOKENS=TOKENS, TORI_SECRET_KEY="another-key") as stranger:
        r = await stranger.get(f"/jobs/{job['job_id']}", params={"ticket": job["ticket"]})
        assert r.status_code == 401


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


async def test_nul_in_a_query_value_is_a_400(owned: Api) -> None:
    r = await owned.get("/jobs", params={"owner_ref": "a\x00b"}, headers=APP)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
