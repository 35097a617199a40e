"""A public-grade API in-process: auth, CORS, idempotency, dedup, by-reference refusals, OpenAPI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from tests.helpers import SAFETY_TOKENS as TOKENS
from tests.helpers import Api, ApiClient, job_count
from tests.pdfs import prose_pdf
from tori_ingest.http.app import api_document

# --- auth and CORS ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def secured(api_client: ApiClient) -> AsyncIterator[Api]:
    async with api_client(**TOKENS) as client:
        yield client


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


@pytest.fixture(scope="module")
async def importer(api_client: ApiClient, import_dir: Path) -> AsyncIterator[Api]:
    async with api_client(TORI_IMPORT_DIR=str(import_dir)) as client:
        yield client


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


async def test_config_openapi_prints_what_a_secured_service_serves(secured: Api) -> None:
    """The JavaScript client's types are generated from `tori-ingest config --openapi`."""
    served = (await secured.get("/openapi.json")).json()
    assert api_document() == served
    split = served["paths"]["/jobs/{job_id}"]["get"]["responses"]["200"]
    schemas = split["content"]["application/json"]["schema"]["anyOf"]
    assert {"$ref": "#/components/schemas/SplitJobView"} in schemas  # `parts` is declared


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
