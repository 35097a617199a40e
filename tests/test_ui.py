"""The operator dashboard's server side (`/ui`): login and sessions, the owner-scoped snapshot
that agrees with `GET /jobs` and `/metrics`, the coalesced WebSocket feed, the copies table,
and the monitoring files (every metric they name exists in `/metrics` of a real server).

The page itself, in a real browser: tests/test_ui_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tori_ingest.core.dashboard import MAX_BATCH_EVENTS
from tori_ingest.core.models import JobEvent
from tori_ingest.core.vocab import Status
from tori_ingest.http import ui
from tori_ingest.http.feed import FLUSH_S, OUTBOX_KEY, DashboardFeed
from tori_ingest.http.hub import EventHub
from tori_ingest.http.session import COOKIE

from .conftest import Api, ApiClient, Server, StartServer, execute, wait_for, ws_url
from .pdfs import make_pdf, prose_pdf

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "config" / "monitoring"
TOKENS = {"TORI_API_TOKENS": "ops:ops-secret, app:app-secret", "TORI_ADMIN_TOKENS": "ops"}
ADMIN = {"Authorization": "Bearer ops-secret"}
APP = {"Authorization": "Bearer app-secret"}
TERMINAL = {str(s) for s in Status if s.terminal}
CORRUPT = b"%PDF-1.4\n" + bytes(range(256)) * 8  # a PDF header, then nothing readable


@pytest.fixture(scope="module")
async def secured(api_client: ApiClient) -> AsyncIterator[Api]:
    async with api_client(**TOKENS) as client:
        yield client


def metric_samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of a /metrics answer: name → [(labels, value)]."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


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


# --- the live feed --------------------------------------------------------------------------------


def _event(n: int, version: int) -> JobEvent:
    job_id = str(uuid.UUID(int=n))
    return JobEvent(
        job_id=job_id, status=Status.RUNNING, pages_done=version, pages_total=99, error=None,
        version=version,
    )  # fmt: skip


async def test_feed_keeps_the_newest_state_per_job_and_caps_a_batch() -> None:
    outbox: dict[str, Any] = {}
    wake = asyncio.Event()
    hub = EventHub("postgresql://unused")  # never started: events are pushed by hand
    feed = DashboardFeed(hub, None, None, outbox, wake)  # type: ignore[arg-type]  # no database
    for version in range(1, 51):  # 100 jobs that each move 50 times: 100 entries
        for n in range(100):
            feed.push(_event(n, version))
    for n in range(100, 100 + MAX_BATCH_EVENTS):  # more jobs than one batch holds
        feed.push(_event(n, 1))
    feed.start()
    try:
        await wait_for(lambda: OUTBOX_KEY in outbox, 10, "the first batch")
        first = outbox[OUTBOX_KEY]
        assert first.resync and first.dropped == 100 and len(first.events) == MAX_BATCH_EVENTS
        assert {e.version for e in first.events if e.job_id < str(uuid.UUID(int=100))} == {50}
        # While a batch is unsent, changes keep coalescing behind it.
        feed.push(_event(1, 51))
        feed.push(_event(1, 52))
        await asyncio.sleep(FLUSH_S * 3)  # (asserting that nothing happens needs time)
        assert outbox[OUTBOX_KEY] is first
        del outbox[OUTBOX_KEY]  # sent
        await wait_for(lambda: OUTBOX_KEY in outbox, 10, "the second batch")
        second = outbox[OUTBOX_KEY]
        assert [e.version for e in second.events] == [52] and not second.resync
    finally:
        feed.stop()


@pytest.fixture(scope="module")
async def dash(start_server: StartServer) -> Server:
    """A real server with auth (ops: admin, app: owner) and its worker."""
    return await start_server(**TOKENS, TORI_SHUTDOWN_GRACE_S="0")


def _submit(srv: Server, data: bytes, headers: dict[str, str], name: str = "a.pdf") -> str:
    r = srv.client.post("/jobs", files={"file": (name, data, "application/pdf")}, headers=headers)
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def test_dashboard_feed_is_owner_scoped_and_bounded(dash: Server) -> None:
    with connect(ws_url(dash, "/ws?token=app-secret")) as ws:
        ws.send('{"dashboard": true}')
        first = json.loads(ws.recv(timeout=10))
        assert first["type"] == "dashboard" and first["resync"]  # read the snapshot now
        started = time.monotonic()
        mine = {_submit(dash, prose_pdf(1, title=f"app {i}"), APP) for i in range(30)}
        theirs = {_submit(dash, prose_pdf(1, title=f"ops {i}"), ADMIN) for i in range(5)}
        latest: dict[str, dict[str, Any]] = {}  # job id → its newest event
        batches = 0
        while not all(latest.get(j, {}).get("status") in TERMINAL for j in mine):
            batch = json.loads(ws.recv(timeout=60))
            batches += 1
            assert batch["type"] == "dashboard" and len(batch["events"]) <= MAX_BATCH_EVENTS
            for event in batch["events"]:
                before = latest.get(event["job_id"], {"version": 0})
                assert event["version"] > before["version"]  # only ever newer states
                latest[event["job_id"]] = event
        elapsed = time.monotonic() - started
    assert not set(latest) & theirs  # another owner's jobs do not exist for this viewer
    assert set(latest) <= mine
    assert batches <= elapsed / FLUSH_S + 2  # coalesced: a few batches a second at most


def test_a_session_websocket_must_come_from_the_page(dash: Server) -> None:
    r = dash.client.post("/ui/login", json={"token": "ops-secret"})
    cookie = {"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"}
    with connect(ws_url(dash, "/ws"), additional_headers=cookie, origin=dash.base) as ws:  # type: ignore[arg-type]
        ws.send('{"dashboard": true}')
        assert json.loads(ws.recv(timeout=10))["type"] == "dashboard"
    evil = "https://evil.example"
    with (
        connect(ws_url(dash, "/ws"), additional_headers=cookie, origin=evil) as ws,  # type: ignore[arg-type]
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    ticket = dash.client.post(
        "/jobs", files={"file": ("t.pdf", prose_pdf(1), "application/pdf")}, headers=APP
    ).json()["ticket"]
    with connect(ws_url(dash, f"/ws?ticket={ticket}")) as ws:  # a ticket reads one job only
        ws.send('{"dashboard": true}')
        assert json.loads(ws.recv(timeout=10))["error"]["code"] == "bad_request"


# --- copies, stalled workers, and the monitoring files -------------------------------------------


async def test_copies_report_their_pools_and_a_dead_one_shows_as_stalled(
    dash: Server, start_server: StartServer
) -> None:
    def state() -> dict[str, Any]:
        return dash.client.get("/ui/state", headers=ADMIN).json()

    def copies() -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in state()["copies"]}

    def census() -> dict[str, float]:
        text = dash.client.get("/metrics", headers=ADMIN).text
        return {s["state"]: v for s, v in metric_samples(text)["tori_copies"]}

    await wait_for(lambda: any(n.endswith(f":{dash.proc.pid}") for n in copies()), 30, "a row")
    ours = next(c for n, c in copies().items() if n.endswith(f":{dash.proc.pid}"))
    assert ours["processes"] >= 2 and not ours["stalled"] and ours["heartbeat_age_s"] < 10
    second = await start_server(db_url=dash.db_url, **TOKENS, TORI_SHUTDOWN_GRACE_S="0")
    name = await wait_for(
        lambda: next((n for n in copies() if n.endswith(f":{second.proc.pid}")), None), 30, "row 2"
    )
    assert census() == {"live": 2, "stalled": 0}
    second.stop(signal.SIGKILL)  # dies without a word: its row stays and stops beating
    await wait_for(lambda: copies()[name]["stalled"], 60, "the dead copy to show as stalled")
    assert census() == {"live": 1, "stalled": 1}
    third = await start_server(db_url=dash.db_url, **TOKENS)
    await wait_for(lambda: any(n.endswith(f":{third.proc.pid}") for n in copies()), 30, "row 3")
    third.stop()  # a clean stop removes its row (the snapshot may be a second old)
    await wait_for(
        lambda: not any(n.endswith(f":{third.proc.pid}") for n in copies()), 5, "row 3 to go"
    )


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\btori_[a-z0-9_]+", expr))


def monitoring_metrics() -> dict[str, set[str]]:
    """Every tori_* metric named by the alert rules and the Grafana dashboard, by where."""
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yml").read_text())
    found = {
        f"alert {r['alert']}": _metric_names(r["expr"]) for g in rules["groups"] for r in g["rules"]
    }
    board = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    for panel in board["panels"]:
        found[f"panel {panel['title']}"] = set().union(
            *(_metric_names(t["expr"]) for t in panel["targets"])
        )
    return found


def test_alert_rules_cover_what_operators_watch() -> None:
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yml").read_text())
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    for metric in (
        "tori_queue_depth",  # queue depth per lane
        "tori_queue_oldest_seconds",  # and its age
        "tori_jobs_finished_total",  # failure rate by code
        "tori_copies",  # stalled workers
        "tori_ready",  # not ready
        "tori_pool_process_starts_total",  # pool restarts
    ):
        assert metric in exprs, metric
    assert all(r.get("annotations", {}).get("summary") for g in rules["groups"] for r in g["rules"])


async def test_every_metric_the_monitoring_files_name_exists(server: Server) -> None:
    good = server.upload(prose_pdf(2)).json()["job_id"]
    bad = server.upload(CORRUPT, "bad.pdf").json()["job_id"]
    blank = server.upload(make_pdf(["", ""]), "blank.pdf").json()["job_id"]
    for job_id in (good, bad, blank):
        await server.wait_job(job_id)
    exposed = set(metric_samples(server.client.get("/metrics").text))
    missing = {
        where: sorted(names - exposed)
        for where, names in monitoring_metrics().items()
        if names - exposed
    }
    assert missing == {}
    assert sum(len(n) for n in monitoring_metrics().values()) > 20  # the walk found them


async def test_metrics_and_state_count_the_same_pages(server: Server) -> None:
    """The chart's pages (from the rows) and tori_pages_processed_total (counted by the worker
    of this, the only, copy) tell the same story."""
    await server.wait_job(server.upload(prose_pdf(3, title="three pages")).json()["job_id"])

    def agree() -> bool:
        state = server.client.get("/ui/state").json()
        pages = sum(b["pages"] for b in state["throughput"]["buckets"])
        text = server.client.get("/metrics").text
        return pages == metric_samples(text)["tori_pages_processed_total"][0][1]

    await wait_for(agree, 30, "the chart's pages to match tori_pages_processed_total")


def test_login_with_auth_off_is_a_no_op(server: Server) -> None:
    r = httpx.post(f"{server.base}/ui/login", json={"token": "anything"})
    assert r.status_code == 200 and r.json() == {"name": None, "admin": True, "auth": False}
    assert "set-cookie" not in r.headers
