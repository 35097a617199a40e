"""The dashboard's server side in-process: login, sessions, the owner-scoped snapshot."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    ADMIN,
    Api,
    ApiClient,
    execute,
    metric_samples,
    wait_for,
)
from tests.helpers import UI_APP as APP
from tests.helpers import UI_TOKENS as TOKENS
from tests.pdfs import prose_pdf
from tori_ingest.http import ui
from tori_ingest.http.session import COOKIE


@pytest.fixture(scope="module")
async def secured(api_client: ApiClient) -> AsyncIterator[Api]:
    async with api_client(**TOKENS) as client:
        yield client


# --- login and sessions ------------------------------------------------------------------------


async def test_login_trades_the_token_for_an_http_only_session(secured: Api) -> None:
    assert (await secured.get("/ui")).status_code == 200  # the page holds no data
    assert (await secured.get("/ui/state")).status_code == 401
    assert (await secured.post("/ui/login", json={"token": "wrong"})).status_code == 401
    form = await secured.post("/ui/login", data={"token": "app-secret"})  # JSON only: no CSRF
    assert form.status_code == 400
    r = await secured.post("/ui/login", json={"token": "app-secret"})
    secured.cookies.clear()
    assert r.status_code == 200 and r.json() == {"name": "app", "admin": False, "auth": True}
    header = r.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/" in header
    assert "app-secret" not in header  # the cookie names the token, it does not hold it
    session = {"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"}
    state = await secured.get("/ui/state", headers=session)
    assert state.status_code == 200 and state.json()["viewer"]["name"] == "app"
    # Other methods need the page's own header: a cross-site form cannot send it.
    job = f"/jobs/{uuid.uuid4()}/retry"
    assert (await secured.post(job, headers=session)).status_code == 401
    assert (await secured.post(job, headers={**session, "X-Tori-UI": "1"})).status_code == 404
    out = await secured.post("/ui/logout")
    assert out.status_code == 200 and "max-age=0" in out.headers["set-cookie"].lower()


async def test_a_tampered_expired_or_ended_session_is_refused(
    secured: Api, api_client: ApiClient, db_url: str
) -> None:
    async def login() -> dict[str, str]:
        r = await secured.post("/ui/login", json={"token": "ops-secret"})
        secured.cookies.clear()
        return {"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"}

    one, two = await login(), await login()
    assert one != two  # two logins, two sessions (the same second included)
    cookie = one["Cookie"].split("=", 1)[1]
    for bad in (cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"), "garbage"):
        r = await secured.get("/ui/state", headers={"Cookie": f"{COOKIE}={bad}"})
        assert r.status_code == 401, bad
    ok = await secured.get("/ui/state", headers=one)
    assert ok.status_code == 200 and ok.json()["viewer"] == {
        "name": "ops",
        "admin": True,
        "auth": True,
    }
    # Logout ends the session on the server: the old cookie no longer reads or writes.
    assert (await secured.post("/ui/logout", headers=one)).status_code == 200
    assert (await secured.get("/ui/state", headers=one)).status_code == 401
    assert (await secured.get("/ui/state", headers=two)).status_code == 200
    # Expired: the row's expiry has passed.
    await execute(db_url, "UPDATE tori_sessions SET expires_at = now() - interval '1 second'")
    assert (await secured.get("/ui/state", headers=two)).status_code == 401
    # Rotating a token's secret ends its sessions, even with a fixed TORI_SECRET_KEY.
    env = {**TOKENS, "TORI_SECRET_KEY": "fixed-key"}
    async with api_client(**env) as before:
        r = await before.post("/ui/login", json={"token": "app-secret"})
        session = {"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"}
    rotated = {**env, "TORI_API_TOKENS": "ops:ops-secret, app:app-secret-2"}
    async with api_client(**env) as same, api_client(**rotated) as after:
        assert (await same.get("/ui/state", headers=session)).status_code == 200
        assert (await after.get("/ui/state", headers=session)).status_code == 401


async def test_the_page_loads_nothing_from_another_host(secured: Api) -> None:
    page = await secured.get("/ui")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "http" not in csp and "*" not in csp
    assert page.headers["content-type"].startswith("text/html")
    for name, kind in (
        ("ui.js", "text/javascript"),
        ("chart.js", "text/javascript"),
        ("ui.css", "text/css"),
    ):
        asset = await secured.get(f"/ui/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
        assert (Path(ui.__file__).parent / "static" / name).is_file()  # inside the package
        urls = set(re.findall(r"https?://[^\s\"'`)]+", asset.text + page.text))
        assert urls <= {"http://www.w3.org/2000/svg"}, urls  # an XML namespace, never fetched
    assert (await secured.get("/ui/static/other.js")).status_code == 404


# --- the snapshot agrees with GET /jobs and /metrics ---------------------------------------------


async def _listed(api: Api, headers: dict[str, str], **query: str) -> int:
    r = await api.get("/jobs", params={"limit": 200, **query}, headers=headers)
    assert r.status_code == 200
    return len(r.json()["jobs"])


async def test_state_is_owner_scoped_and_agrees_with_jobs_and_metrics(
    api_client: ApiClient, fresh_db_url: str
) -> None:
    async with api_client(db_url=fresh_db_url, **TOKENS) as api:  # no worker: jobs stay queued
        for who, n, lane in (
            (APP, 3, "interactive"),
            (ADMIN, 2, "interactive"),
            (ADMIN, 1, "bulk"),
        ):
            for _ in range(n):
                files = {"file": ("a.pdf", prose_pdf(1), "application/pdf")}
                r = await api.post("/jobs", files=files, data={"priority": lane}, headers=who)
                assert r.status_code == 202
        ten = await api.get("/ui/state", params={"range": "10m"}, headers=ADMIN)  # (cached 1 s)
        buckets = ten.json()["throughput"]["buckets"]
        peak = {lane: max(b["queued"][lane] for b in buckets) for lane in ("interactive", "bulk")}
        assert peak == {"interactive": 5, "bulk": 1}
        cancelled = r.json()["job_id"]
        assert (await api.delete(f"/jobs/{cancelled}", headers=ADMIN)).status_code == 200
        metrics = metric_samples((await api.get("/metrics", headers=ADMIN)).text)
        gauge = {(s["status"], s["lane"]): v for s, v in metrics["tori_jobs"]}
        depth = {s["lane"]: v for s, v in metrics["tori_queue_depth"]}
        for who, owner_total in ((ADMIN, 6), (APP, 3)):
            state = (await api.get("/ui/state", headers=who)).json()
            counts = state["counts"]
            assert sum(sum(lanes.values()) for lanes in counts.values()) == owner_total
            for status, lanes in counts.items():
                for lane, n in lanes.items():
                    assert n == await _listed(api, who, status=status, lane=lane), (status, lane)
                    if who is ADMIN:
                        assert n == gauge[(status, lane)], (status, lane)
            last = state["throughput"]["buckets"][-1]
            assert len(state["throughput"]["buckets"]) == 60
            for lane, queue in state["queue"].items():
                assert queue["depth"] == counts["queued"][lane]
                assert last["queued"][lane] >= queue["depth"]  # the slot's peak
                if who is ADMIN:
                    assert queue["depth"] == depth[lane]
                assert (queue["oldest_s"] > 0) == (queue["depth"] > 0)
        assert counts["queued"] == {"interactive": 3, "bulk": 0}  # the app's own only
        assert last["queued"] == {"interactive": 3, "bulk": 0}
        assert ten.json()["throughput"]["bucket_s"] == 10
        assert (
            await api.get("/ui/state", params={"range": "2d"}, headers=ADMIN)
        ).status_code == 400


async def test_a_copy_is_busy_with_the_jobs_the_running_list_shows(secured: Api) -> None:
    """A copy's last heartbeat said it was idle, yet two of its jobs run now (picked up since,
    or waiting for a pool process): Busy counts them, as the Running list does."""
    name = f"host-{uuid.uuid4().hex[:6]}:1"
    await execute(
        secured.db_url,
        "INSERT INTO tori_copies (name, host, pid, version, stalled_after_s, processes, busy,"
        " process_starts, running) VALUES ($1, 'host', 1, 'test', 60, 1, 0, 1, '{}')",
        name,
    )
    for _ in range(2):
        sent = {"file": ("a.pdf", prose_pdf(1), "application/pdf")}
        job_id = (await secured.post("/jobs", files=sent, headers=ADMIN)).json()["job_id"]
        await execute(
            secured.db_url,
            "UPDATE tori_jobs SET status = 'running', started_at = now(), copy_name = $2"
            " WHERE id = $1",
            uuid.UUID(job_id),
            name,
        )
    r = await secured.post("/ui/login", json={"token": "ops-secret"})
    secured.cookies.clear()
    session = {"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"}

    async def snapshot_with_the_copy() -> dict[str, Any] | None:
        state: dict[str, Any] = (await secured.get("/ui/state", headers=session)).json()
        return state if any(c["name"] == name for c in state["copies"]) else None

    state = await wait_for(snapshot_with_the_copy, 10, "a snapshot newer than its 1 s cache")
    (copy,) = [c for c in state["copies"] if c["name"] == name]
    running = [j for j in state["running"] if j["copy_name"] == name]
    assert copy["busy"] == len(running) == 2
