"""The dashboard on a real server: the WebSocket feed, copies, metrics named by monitoring files."""

from __future__ import annotations

import json
import re
import signal
import time
from typing import Any

import httpx
import pytest
import yaml
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.helpers import (
    ADMIN,
    CORRUPT,
    MONITORING,
    Server,
    StartServer,
    metric_samples,
    wait_for,
    ws_url,
)
from tests.helpers import UI_APP as APP
from tests.helpers import UI_TOKENS as TOKENS
from tests.pdfs import make_pdf, prose_pdf
from tori_ingest.core.dashboard import MAX_BATCH_EVENTS
from tori_ingest.core.vocab import Status
from tori_ingest.http.feed import FLUSH_S
from tori_ingest.http.session import COOKIE

TERMINAL = {str(s) for s in Status if s.terminal}


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
