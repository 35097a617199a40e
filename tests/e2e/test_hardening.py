"""Security-review findings on real processes: 503 metrics, `config`, downloads, boundaries."""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import (
    Relay,
    Server,
    StartServer,
    job_count,
    new_database,
    storage_files,
    wait_for,
)
from tests.pdfs import prose_pdf

# --- A. /metrics counts the status that was sent ----------------------------------------------


def requests_by_status(text: str, method: str, route: str) -> dict[str, float]:
    """`tori_http_requests_total` of one route, by status label, from a /metrics answer."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "tori_http_requests_total"
                and labels["method"] == method
                and labels["route"] == route
            ):
                out[labels["status"]] = sample.value
    return out


class DatabaseRelay(Relay):
    """`Relay` (loopback TCP, `down()` cuts every connection) in front of the test Postgres,
    whether it listens on a Unix socket (the embedded one) or on TCP (DATABASE_URL)."""

    def __init__(self, db_url: str) -> None:
        parts = urlsplit(db_url)
        socket_dir = parse_qs(parts.query).get("host", [""])[0]
        self.socket: str | None = None
        if socket_dir.startswith("/"):
            found = [p for p in Path(socket_dir).glob(".s.PGSQL.*") if p.suffix != ".lock"]
            self.socket = str(found[0])
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        user = f"{parts.username or 'postgres'}:{parts.password or ''}"
        super().__init__(0)
        self.url = f"postgresql://{user}@127.0.0.1:{self.port}{parts.path}"

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.socket is not None:
            return await asyncio.open_unix_connection(self.socket)
        return await asyncio.open_connection(*self.upstream)


async def test_a_503_for_an_unreachable_database_is_counted_as_503(
    start_server: StartServer, admin_url: str, template_url: str
) -> None:
    relay = DatabaseRelay(await new_database(admin_url))
    try:
        web = await start_server("serve", "--no-worker", db_url=relay.url)
        route = "/jobs/{job_id}"
        assert web.client.get(f"/jobs/{uuid.uuid4()}").status_code == 404
        answered = collections.Counter({"404": 1})

        relay.down()

        def outage() -> bool:
            r = web.client.get(f"/jobs/{uuid.uuid4()}")
            answered[str(r.status_code)] += 1
            return r.status_code == 503 and r.json()["error"]["code"] == "unavailable"

        try:
            await wait_for(outage, 30, "a 503 while the database is away")
            relay.up()
            await wait_for(lambda: web.client.get("/readyz").status_code == 200, 60, "recovery")
        except AssertionError:
            print(web.log_text())
            raise
        counted = requests_by_status(web.client.get("/metrics").text, "GET", route)
        assert counted == {status: float(n) for status, n in answered.items()}, answered
        assert "500" not in counted, web.log_text()
        web.stop()  # before its database goes away for good
    finally:
        relay.down()


# --- B. `tori-ingest config` shows no credential ----------------------------------------------

WEBHOOK_KEY = "whsec_" + base64.b64encode(b"K" * 32).decode()
SECRETS = {
    "DATABASE_URL": "postgresql://dbuser:LEAK-db-pw@db.example:5432/x"
    "?sslpassword=LEAK-ssl&options=LEAK-opt",
    "AWS_ENDPOINT_URL": "http://minio:LEAK-ep-pw@127.0.0.1:9000/?api_key=LEAK-ep-key",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "LEAK-aws",
    "TORI_STORAGE_URL": "s3://LEAK-st-user:LEAK-st-pw@docs-bucket/p?X-Amz-Signature=LEAK-sig",
    "TORI_IMPORT_URL": "s3://archive-bucket/scans?token=LEAK-import",
    "TORI_WEBHOOK_URL": "https://h.example/hook?token=LEAK-hook&x=LEAK-x#LEAK-frag",
    "TORI_API_TOKENS": "app:LEAK-app-token,ops:LEAK-ops-token",
    "TORI_SECRET_KEY": "LEAK-ticket-key",
    "TORI_WEBHOOK_SECRET": WEBHOOK_KEY,
}


def test_config_prints_no_credential_of_any_url_or_secret() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORI_", "DATABASE_", "AWS_"))}
    script = Path(sys.executable).with_name("tori-ingest")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tori_ingest"]
    out = subprocess.run(
        [*command, "config"],
        env={**env, **SECRETS, "AWS_ALLOW_HTTP": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    shown = out.stdout + out.stderr
    leaked = [s for s in ("LEAK", WEBHOOK_KEY, WEBHOOK_KEY[6:], "minio", "dbuser") if s in shown]
    assert leaked == [], shown
    printed = json.loads(out.stdout)
    assert printed["AWS_ENDPOINT_URL"] == "http://***@127.0.0.1:9000/?api_key=***"
    assert printed["TORI_WEBHOOK_URL"] == "https://h.example/hook?token=***&x=***#***"
    assert printed["TORI_STORAGE_URL"] == "s3://***@docs-bucket/p?X-Amz-Signature=***"
    assert printed["TORI_IMPORT_URL"] == "s3://archive-bucket/scans?token=***"
    assert printed["DATABASE_URL"].startswith("postgresql://***@db.example:5432/x?")
    assert printed["AWS_SECRET_ACCESS_KEY"] == "<set>" and printed["TORI_SECRET_KEY"] == "<set>"


# --- C. downloads cannot be rendered as something else ----------------------------------------


async def test_a_pdf_uploaded_as_html_downloads_as_a_pdf_attachment(server: Server) -> None:
    data = prose_pdf(1)
    job_id = server.upload(data, "invoice.html").json()["job_id"]
    assert (await server.wait_job(job_id))["status"] == "succeeded"
    r = server.client.get(f"/jobs/{job_id}/file")
    assert r.status_code == 200 and r.content == data
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''invoice.pdf"
    assert "html" not in r.headers["content-disposition"]


# --- D. an over-long multipart boundary is the client's error --------------------------------


async def test_a_boundary_over_256_characters_is_400_and_leaves_nothing(server: Server) -> None:
    boundary = "a" * 300
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.pdf"\r\n'
            f"Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + prose_pdf(1)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    jobs, files = await job_count(server), storage_files(server)
    r = server.client.post(
        "/jobs",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_request"
    assert await job_count(server) == jobs
    assert storage_files(server) == files
