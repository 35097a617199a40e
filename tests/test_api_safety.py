"""A public-grade API (SPEC §3-4): auth, CORS, idempotency, dedup, by-reference, lanes, OpenAPI.

The API surface is checked in-process (`api`, `api_client`); a real server where a job must
run, a WebSocket must connect, or a tool needs a live URL.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tori_ingest.core.settings import Settings
from tori_ingest.http import app as api_module
from tori_ingest.http.context import Context

from .conftest import Api, ApiClient, Server, StartServer, job_count, ws_url
from .pdfs import prose_pdf

TOKENS = {"TORI_API_TOKENS": "tok-one, tok-two", "TORI_CORS_ORIGINS": "https://app.example"}

# --- auth and CORS ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def secured(api_client: ApiClient) -> AsyncIterator[Api]:
    async with api_client(**TOKENS) as client:
        yield client


@pytest.fixture(scope="module")
async def secured_server(start_server: StartServer) -> Server:
    return await start_server(**TOKENS)


async def test_every_route_but_probes_and_docs_needs_a_token(secured: Api) -> None:
    for open_path in ("/healthz", "/readyz", "/openapi.json", "/docs"):  # no data in these
        assert (await secured.get(open_path)).status_code == 200, open_path
    for method, path in [
        ("GET", "/jobs"),
        ("POST", "/jobs"),
        ("GET", "/metrics"),
        ("GET", "/jobs/00000000-0000-4000-8000-000000000000"),
    ]:
        r = await secured.request(method, path)
        assert r.status_code == 401, (method, path)
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
    for header in ("Bearer wrong", "Basic tok-one"):
        r = await secured.get("/jobs", headers={"Authorization": header})
        assert r.status_code == 401, header
    ok = await secured.get("/jobs", headers={"Authorization": "Bearer tok-two"})
    assert ok.status_code == 200


def test_websocket_takes_header_or_query_token(secured_server: Server) -> None:
    for path in ("/ws", "/ws?token=wrong"):  # refused like REST: a close code, not an HTTP 403
        with connect(ws_url(secured_server, path)) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    with connect(ws_url(secured_server, "/ws?token=tok-one")) as ws:
        ws.send('{"subscribe": ["00000000-0000-4000-8000-000000000000"]}')
        assert "not_found" in ws.recv(timeout=10)
    headers = {"Authorization": "Bearer tok-two"}
    with connect(ws_url(secured_server, "/ws"), additional_headers=headers):
        pass


async def test_cors_preflight_needs_no_token(secured: Api) -> None:
    r = await secured.options(
        "/jobs",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,idempotency-key",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    other = await secured.options(
        "/jobs", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in other.headers


# --- idempotency and dedup -------------------------------------------------------------------


async def test_idempotency_key_replays_and_conflicts(api: Api) -> None:
    data = prose_pdf(1, title="idem")
    first = await api.upload(data)
    assert first.status_code == 202
    headers = {"Idempotency-Key": "order-42"}
    a = await api.post("/jobs", headers=headers, files={"file": ("x.pdf", data)})
    b = await api.post("/jobs", headers=headers, files={"file": ("x.pdf", data)})
    assert a.status_code == 202 and b.status_code == 200
    assert a.json()["job_id"] == b.json()["job_id"]
    other = await api.post("/jobs", headers=headers, files={"file": ("x.pdf", prose_pdf(2))})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    changed = await api.post(
        "/jobs", headers=headers, files={"file": ("x.pdf", data)}, data={"priority": "bulk"}
    )
    assert changed.status_code == 409


async def test_concurrent_duplicates_create_one_job(api: Api) -> None:
    data = prose_pdf(2, title="race")
    before = await job_count(api)
    # Eight requests in flight at once, interleaving at every database round trip.
    answers = await asyncio.gather(
        *(
            api.post(
                "/jobs", headers={"Idempotency-Key": "race-1"}, files={"file": ("r.pdf", data)}
            )
            for _ in range(8)
        )
    )
    assert sorted(r.status_code for r in answers) == [200] * 7 + [202]
    assert len({r.json()["job_id"] for r in answers}) == 1
    assert await job_count(api) == before + 1


async def test_dedup_answers_from_the_earlier_result(server: Server) -> None:
    data = prose_pdf(2, title="dedup me")
    original = await server.wait_job(server.upload(data).json()["job_id"])
    assert original["status"] == "succeeded"
    again = server.upload(data, "copy.pdf")
    assert again.status_code == 202
    assert again.json()["status"] == "succeeded" and again.json()["deduplicated"] is True
    job = server.status(again.json()["job_id"])
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
    rerun = await server.wait_job(forced.json()["job_id"])
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
async def importer(api_client: ApiClient, import_dir: Path) -> AsyncIterator[Api]:
    async with api_client(TORI_IMPORT_DIR=str(import_dir)) as client:
        yield client


@pytest.fixture(scope="module")
async def importer_server(start_server: StartServer, import_dir: Path) -> Server:
    return await start_server(TORI_IMPORT_DIR=str(import_dir))


async def test_by_reference_submits_run_in_the_bulk_lane(importer_server: Server) -> None:
    srv = importer_server
    one = srv.client.post("/jobs", json={"path": "a.pdf"})
    assert one.status_code == 202
    job = await srv.wait_job(one.json()["job_id"])
    assert job["status"] == "succeeded" and job["lane"] == "bulk" and job["pages_total"] == 2
    assert job["document"]["filename"] == "a.pdf"
    many = srv.client.post(
        "/jobs", json={"paths": ["sub/b.pdf", "a.pdf"], "priority": "interactive"}
    )
    assert many.status_code == 202 and len(many.json()) == 2
    b = await srv.wait_job(many.json()[0]["job_id"])
    assert b["status"] == "succeeded" and b["lane"] == "interactive" and b["pages_total"] == 3
    # Each file was copied into the store once, by content (a.pdf twice = one copy).
    stored = sorted(p.name for p in srv.storage.rglob("*.pdf"))
    assert stored == sorted({f"{j['document']['sha256']}.pdf" for j in (job, b)})


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"path": "../outside/secret.pdf"}, 400, "bad_request"),
        ({"path": "/etc/passwd"}, 400, "bad_request"),
        ({"path": "escape.pdf"}, 400, "bad_request"),
        ({"path": "missing.pdf"}, 400, "bad_request"),
        ({"path": "notes.pdf"}, 415, "unsupported_type"),
        ({"path": "empty.pdf"}, 400, "empty_file"),
        ({"paths": []}, 400, "bad_request"),
        ({"paths": "a.pdf"}, 400, "bad_request"),
        ({"path": 42}, 400, "bad_request"),
        ({"path": "a.pdf", "priority": "urgent"}, 400, "bad_request"),
        ({"paths": ["a.pdf", "../x.pdf"]}, 400, "bad_request"),
    ],
)
async def test_by_reference_refusals_leave_nothing(
    importer: Api, body: dict, status: int, code: str
) -> None:
    before = await job_count(importer)
    r = await importer.post("/jobs", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert await job_count(importer) == before


async def test_bad_json_and_disabled_import(api: Api) -> None:
    r = await api.post("/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    off = await api.post("/jobs", json={"path": "a.pdf"})  # no TORI_IMPORT_DIR here
    assert off.status_code == 400 and "TORI_IMPORT_DIR" in off.json()["error"]["message"]


# --- priority lanes --------------------------------------------------------------------------


async def test_interactive_overtakes_a_queued_backfill(
    start_server: StartServer, import_dir: Path
) -> None:
    api_only = await start_server("serve", "--no-worker", TORI_IMPORT_DIR=str(import_dir))
    bulk = [
        api_only.client.post(
            "/jobs", params={"reprocess": "true"}, json={"path": "sub/b.pdf"}
        ).json()["job_id"]
        for _ in range(20)
    ]
    urgent = api_only.upload(prose_pdf(1, title="urgent")).json()["job_id"]
    worker = await start_server(
        db_url=api_only.db_url,
        TORI_POOL_SIZE="1",
        TORI_IMPORT_DIR=str(import_dir),
        TORI_STORAGE_DIR=str(api_only.storage),
    )
    first = await worker.wait_job(urgent)
    assert first["status"] == "succeeded"
    started_bulk = [worker.status(i)["started_at"] for i in bulk]
    # The interactive job never waits behind the backlog. With its own slot (pool of 1 plus the
    # interactive spare), the bulk worker may start one back-fill job in the same instant.
    ahead = [s for s in started_bulk if s is not None and s < first["started_at"]]
    assert len(ahead) <= 1, ahead
    # ...and the back-fill still progresses.
    for i in bulk:
        assert (await worker.wait_job(i))["status"] == "succeeded", i
    listed = worker.client.get("/jobs", params={"lane": "bulk", "limit": 200}).json()["jobs"]
    assert {j["job_id"] for j in listed} == set(bulk)


# --- OpenAPI ---------------------------------------------------------------------------------


def test_every_route_is_described() -> None:
    ctx = Context(settings=Settings.load({}), db=None, storage=None)  # type: ignore[arg-type]
    app = api_module.build_api(ctx)
    described = app.state.openapi["paths"]
    for route in app.routes:
        assert route.path in described, route.path
        for method in getattr(route, "methods", None) or {"GET"}:
            if method != "HEAD":
                assert method.lower() in described[route.path], (method, route.path)


async def test_openapi_is_valid_3_1_with_a_schema_for_every_json_answer(api: Api) -> None:
    r = await api.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    spec = r.json()
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema
    json_answers = set()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete", "options", "head", "patch"):
                continue
            for status, response in op["responses"].items():
                if not str(status).startswith("2"):
                    continue
                content = response.get("content", {})
                if "application/json" in content:
                    json_answers.add((method.upper(), path, str(status)))
                    assert content["application/json"].get("schema"), (method, path, status)
    # The walk above did reach the JSON routes (nothing skipped by a wrong key).
    assert {
        ("POST", "/jobs", "202"),
        ("GET", "/jobs", "200"),
        ("GET", "/jobs/{job_id}", "200"),
        ("GET", "/jobs/{job_id}/result", "200"),
        ("GET", "/readyz", "200"),
    } <= json_answers


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
