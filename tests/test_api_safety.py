"""A public-grade API (SPEC §3-4): auth, CORS, idempotency, dedup, by-reference, lanes, OpenAPI."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tori_ingest.core.settings import Settings
from tori_ingest.http import app as api
from tori_ingest.http.context import Context

from .conftest import Server, StartServer, fetchval
from .pdfs import prose_pdf


def ws_url(srv: Server, path: str) -> str:
    return srv.base.replace("http://", "ws://") + path


def job_count(srv: Server) -> int:
    return fetchval(srv.db_url, "SELECT count(*) FROM tori_jobs")


# --- auth and CORS ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(start_server: StartServer) -> Server:
    return start_server(TORI_API_TOKENS="tok-one, tok-two", TORI_CORS_ORIGINS="https://app.example")


def test_every_route_but_probes_needs_a_token(secured: Server) -> None:
    c = secured.client
    assert c.get("/healthz").status_code == 200
    assert c.get("/readyz").status_code == 200
    for method, path in [
        ("GET", "/jobs"),
        ("POST", "/jobs"),
        ("GET", "/openapi.json"),
        ("GET", "/jobs/00000000-0000-4000-8000-000000000000"),
    ]:
        r = c.request(method, path)
        assert r.status_code == 401, (method, path)
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert c.get("/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/jobs", headers={"Authorization": "Basic tok-one"}).status_code == 401
    assert c.get("/jobs", headers={"Authorization": "Bearer tok-two"}).status_code == 200


def test_websocket_takes_header_or_query_token(secured: Server) -> None:
    with pytest.raises(InvalidStatus):
        connect(ws_url(secured, "/ws")).close()
    with connect(ws_url(secured, "/ws?token=tok-one")) as ws:
        ws.send('{"subscribe": ["00000000-0000-4000-8000-000000000000"]}')
        assert "not_found" in ws.recv(timeout=10)
    with connect(ws_url(secured, "/ws"), additional_headers={"Authorization": "Bearer tok-two"}):
        pass


def test_cors_preflight_needs_no_token(secured: Server) -> None:
    r = secured.client.options(
        "/jobs",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,idempotency-key",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    other = secured.client.options(
        "/jobs", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in other.headers


# --- idempotency and dedup -------------------------------------------------------------------


def test_idempotency_key_replays_and_conflicts(server: Server) -> None:
    data = prose_pdf(1, title="idem")
    first = server.upload(data, **{})
    assert first.status_code == 202
    headers = {"Idempotency-Key": "order-42"}
    a = server.client.post("/jobs", headers=headers, files={"file": ("x.pdf", data)})
    b = server.client.post("/jobs", headers=headers, files={"file": ("x.pdf", data)})
    assert a.status_code == 202 and b.status_code == 200
    assert a.json()["job_id"] == b.json()["job_id"]
    other = server.client.post("/jobs", headers=headers, files={"file": ("x.pdf", prose_pdf(2))})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    changed = server.client.post(
        "/jobs", headers=headers, files={"file": ("x.pdf", data)}, data={"priority": "bulk"}
    )
    assert changed.status_code == 409


def test_concurrent_duplicates_create_one_job(server: Server) -> None:
    data = prose_pdf(2, title="race")
    before = job_count(server)

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.base, timeout=30) as c:
            return c.post(
                "/jobs", headers={"Idempotency-Key": "race-1"}, files={"file": ("r.pdf", data)}
            )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    assert sorted(r.status_code for r in answers) == [200] * 7 + [202]
    assert len({r.json()["job_id"] for r in answers}) == 1
    assert job_count(server) == before + 1


def test_dedup_answers_from_the_earlier_result(server: Server) -> None:
    data = prose_pdf(2, title="dedup me")
    original = server.wait_job(server.upload(data).json()["job_id"])
    assert original["status"] == "succeeded"
    again = server.upload(data, "copy.pdf")
    assert again.status_code == 202
    assert again.json()["status"] == "succeeded" and again.json()["deduplicated"] is True
    job = server.client.get(f"/jobs/{again.json()['job_id']}").json()
    assert job["deduplicated"] is True and job["pages_total"] == 2 and job["attempts"] == 0
    assert job["document"]["filename"] == "copy.pdf"
    result = server.client.get(f"/jobs/{job['job_id']}/result").json()
    assert result["job_id"] == job["job_id"] and result["deduplicated"] is True
    earlier = server.client.get(f"/jobs/{original['job_id']}/result").json()
    assert result["pages"] == earlier["pages"] and earlier["deduplicated"] is False

    forced = server.client.post(
        "/jobs", params={"reprocess": "true"}, files={"file": ("again.pdf", data)}
    )
    assert forced.json()["status"] == "queued"
    rerun = server.wait_job(forced.json()["job_id"])
    assert rerun["status"] == "succeeded" and rerun["deduplicated"] is False
    assert rerun["attempts"] == 1


# --- by reference ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def import_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("import")
    (root / "sub").mkdir()
    (root / "a.pdf").write_bytes(prose_pdf(2, title="by ref a"))
    (root / "sub" / "b.pdf").write_bytes(prose_pdf(3, title="by ref b"))
    (root / "notes.pdf").write_bytes(b"plain text, not a pdf")
    (root / "empty.pdf").write_bytes(b"")
    outside = tmp_path_factory.mktemp("outside") / "secret.pdf"
    outside.write_bytes(prose_pdf(1))
    (root / "escape.pdf").symlink_to(outside)
    return root


@pytest.fixture(scope="module")
def importer(start_server: StartServer, import_dir: Path) -> Server:
    return start_server(TORI_IMPORT_DIR=str(import_dir))


def test_by_reference_submits_run_in_the_bulk_lane(importer: Server) -> None:
    one = importer.client.post("/jobs", json={"path": "a.pdf"})
    assert one.status_code == 202
    job = importer.wait_job(one.json()["job_id"])
    assert job["status"] == "succeeded" and job["lane"] == "bulk" and job["pages_total"] == 2
    assert job["document"]["filename"] == "a.pdf"
    many = importer.client.post(
        "/jobs", json={"paths": ["sub/b.pdf", "a.pdf"], "priority": "interactive"}
    )
    assert many.status_code == 202 and len(many.json()) == 2
    b = importer.wait_job(many.json()[0]["job_id"])
    assert b["status"] == "succeeded" and b["lane"] == "interactive" and b["pages_total"] == 3
    # Nothing was copied into storage: the import tree is read in place.
    assert not list(importer.storage.rglob("*.pdf"))


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"path": "../outside/secret.pdf"}, 400, "bad_request"),
        ({"path": "/etc/passwd"}, 400, "bad_request"),
        ({"path": "escape.pdf"}, 400, "bad_request"),
        ({"path": "missing.pdf"}, 400, "bad_request"),
        ({"path": "notes.pdf"}, 415, "not_a_pdf"),
        ({"path": "empty.pdf"}, 400, "empty_file"),
        ({"paths": []}, 400, "bad_request"),
        ({"paths": "a.pdf"}, 400, "bad_request"),
        ({"path": 42}, 400, "bad_request"),
        ({"path": "a.pdf", "priority": "urgent"}, 400, "bad_request"),
        ({"paths": ["a.pdf", "../x.pdf"]}, 400, "bad_request"),
    ],
)
def test_by_reference_refusals_leave_nothing(
    importer: Server, body: dict, status: int, code: str
) -> None:
    before = job_count(importer)
    r = importer.client.post("/jobs", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert job_count(importer) == before


def test_bad_json_and_disabled_import(server: Server) -> None:
    r = server.client.post(
        "/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    off = server.client.post("/jobs", json={"path": "a.pdf"})  # no TORI_IMPORT_DIR here
    assert off.status_code == 400 and "TORI_IMPORT_DIR" in off.json()["error"]["message"]


# --- priority lanes --------------------------------------------------------------------------


def test_interactive_overtakes_a_queued_backfill(
    start_server: StartServer, import_dir: Path
) -> None:
    api_only = start_server("serve", "--no-worker", TORI_IMPORT_DIR=str(import_dir))
    bulk = [
        api_only.client.post(
            "/jobs", params={"reprocess": "true"}, json={"path": "sub/b.pdf"}
        ).json()["job_id"]
        for _ in range(20)
    ]
    urgent = api_only.upload(prose_pdf(1, title="urgent")).json()["job_id"]
    worker = start_server(
        db_url=api_only.db_url,
        TORI_POOL_SIZE="1",
        TORI_IMPORT_DIR=str(import_dir),
        TORI_STORAGE_DIR=str(api_only.storage),
    )
    first = worker.wait_job(urgent)
    assert first["status"] == "succeeded"
    started_bulk = [worker.client.get(f"/jobs/{i}").json()["started_at"] for i in bulk]
    assert all(s is None or s > first["started_at"] for s in started_bulk)
    # ...and the back-fill still progresses.
    assert all(worker.wait_job(i)["status"] == "succeeded" for i in bulk)
    listed = worker.client.get("/jobs", params={"lane": "bulk", "limit": 200}).json()["jobs"]
    assert {j["job_id"] for j in listed} == set(bulk)


# --- OpenAPI ---------------------------------------------------------------------------------


def test_every_route_is_described() -> None:
    ctx = Context(settings=Settings.load({}), db=None, storage=None)  # type: ignore[arg-type]
    app = api.build_app(ctx)
    described = app.state.openapi["paths"]
    for route in app.routes:
        assert route.path in described, route.path
        for method in getattr(route, "methods", None) or {"GET"}:
            if method != "HEAD":
                assert method.lower() in described[route.path], (method, route.path)


@pytest.mark.skipif(
    shutil.which("schemathesis", path=os.path.dirname(sys.executable)) is None,
    reason="schemathesis is not installed",
)
def test_schemathesis_finds_no_server_errors(server: Server, tmp_path: Path) -> None:
    run = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "schemathesis"),
            "run",
            f"{server.base}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            "--max-examples",
            "15",
            "--exclude-path-regex",
            "^/ws",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # its cache stays out of the checkout
    )
    summary = run.stdout[-3000:]
    print(summary)
    assert run.returncode == 0, summary
    assert server.server_errors() == []
