"""Webhooks in-process: SSRF refusals at submit, deliveries and their logs in Postgres."""

from __future__ import annotations

import re
import uuid

import asyncpg
import orjson

from tests.helpers import (
    LOOPBACK_OK,
    ApiClient,
    delivery_rows,
    fetchval,
)
from tests.helpers import WEBHOOK_SECRET as SECRET
from tests.helpers import unique_text_pdf as pdf
from tori_ingest.core.vocab import DeliveryState
from tori_ingest.store import deliveries

TOKENS = "app:app-secret-1,ops:ops-secret-2"
APP = {"Authorization": "Bearer app-secret-1"}
OPS = {"Authorization": "Bearer ops-secret-2"}


# --- the API, in process (no worker: deliveries stay pending) --------------------------------


REFUSED = [
    "http://127.0.0.1:9/h",
    "http://localhost:8080/h",
    "http://api.localhost/h",
    "http://[::1]/h",
    "http://10.1.2.3/h",
    "http://172.16.5.4/h",
    "http://192.168.1.1/h",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/h",
    "http://0.0.0.0/h",
    "http://127.1/h",
    "http://2130706433/h",
    "http://[::ffff:127.0.0.1]/h",
    "http://metadata.google.internal/computeMetadata/v1/",
    "ftp://example.com/h",
    "http://user:pw@example.com/h",
    "not a url",
]


async def test_submit_refuses_callbacks_to_internal_addresses(api_client: ApiClient) -> None:
    async with api_client(TORI_WEBHOOK_SECRET=SECRET) as api:
        for url in REFUSED:
            r = await api.upload(pdf(), callback_url=url)
            assert r.status_code == 400, (url, r.text)
            assert r.json()["error"]["code"] == "bad_request"
        r = await api.post("/jobs", json={"path": "a.pdf", "callback_url": REFUSED[0]})
        assert r.status_code == 400 and "loopback" in r.json()["error"]["message"]
        ok = await api.upload(pdf(), callback_url="https://hooks.example.com/tori?token=t")
        assert ok.status_code == 202, ok.text
    async with api_client(**LOOPBACK_OK) as api:  # the flag lets loopback/private through
        for url in ("http://127.0.0.1:9/h", "http://10.1.2.3/h", "http://localhost/h"):
            assert (await api.upload(pdf(), callback_url=url)).status_code == 202, url
        metadata = await api.upload(pdf(), callback_url="http://169.254.169.254/")
        assert metadata.status_code == 400  # never, flag or not
    async with api_client() as api:  # no secret: nothing could be signed
        r = await api.upload(pdf(), callback_url="https://hooks.example.com/h")
        assert r.status_code == 400 and "TORI_WEBHOOK_SECRET" in r.json()["error"]["message"]


async def test_each_terminal_state_creates_one_delivery_with_its_queue_entry(
    api_client: ApiClient,
) -> None:
    """The trigger: a cancel, a cancel after a retry, and a job born succeeded (dedup) each
    create one pending delivery and its queue job, in the transaction that ended the job."""
    async with api_client(**LOOPBACK_OK) as api:
        job = (await api.upload(pdf(), callback_url="http://127.0.0.1:9/a")).json()["job_id"]
        assert await delivery_rows(api.db_url, job) == []  # queued: nothing yet
        await api.delete(f"/jobs/{job}")
        await api.post(f"/jobs/{job}/retry")
        await api.delete(f"/jobs/{job}")
        rows = await delivery_rows(api.db_url, job)
        assert [(r["event_type"], r["state"]) for r in rows] == [("job.cancelled", "pending")] * 2
        assert rows[0]["url"] == "http://127.0.0.1:9/a" and rows[0]["payload"] is None
        assert "password" not in orjson.loads(rows[0]["snapshot"])
        conn = await asyncpg.connect(api.db_url)
        try:
            queued = await conn.fetch(
                "SELECT queue_name, task_name, args, status::text FROM procrastinate_jobs"
                " WHERE id = ANY($1::bigint[])",
                [r["queue_job_id"] for r in rows],
            )
            # Dedup: a job born succeeded (the source's result faked: no worker here).
            data = pdf()
            first = (await api.upload(data)).json()["job_id"]
            await conn.execute(
                "UPDATE tori_jobs SET status = 'succeeded', finished_at = now(), pages_total = 1"
                " WHERE id = $1",
                uuid.UUID(first),
            )
            await conn.execute(
                'INSERT INTO tori_results VALUES ($1, \'{"document": {"encrypted": false}}\')',
                uuid.UUID(first),
            )
        finally:
            await conn.close()
        assert {(q["queue_name"], q["task_name"], q["status"]) for q in queued} == {
            (deliveries.QUEUE, deliveries.TASK_NAME, "todo")
        }
        assert {orjson.loads(q["args"])["delivery_id"] for q in queued} == {
            str(r["id"]) for r in rows
        }
        born = (await api.upload(data, callback_url="http://127.0.0.1:9/b")).json()
        assert born["deduplicated"] and born["status"] == "succeeded"
        rows = await delivery_rows(api.db_url, born["job_id"])
        assert [(r["event_type"], r["url"]) for r in rows] == [
            ("job.succeeded", "http://127.0.0.1:9/b")
        ]
        assert await delivery_rows(api.db_url, first) == []  # it had no callback


async def test_global_webhook_url_is_captured_at_submit(api_client: ApiClient) -> None:
    async with api_client(TORI_WEBHOOK_URL="https://hooks.example.com/all", **LOOPBACK_OK) as api:
        default = (await api.upload(pdf())).json()["job_id"]
        own = (await api.upload(pdf(), callback_url="http://127.0.0.1:9/own")).json()["job_id"]
    async with api_client() as api:  # a copy without the setting ends them
        for job in (default, own):
            await api.delete(f"/jobs/{job}")
        urls = [(await delivery_rows(api.db_url, j))[0]["url"] for j in (default, own)]
        assert urls == ["https://hooks.example.com/all", "http://127.0.0.1:9/own"]


async def test_erase_cancels_pending_deliveries_and_drops_their_data(
    api_client: ApiClient,
) -> None:
    async with api_client(**LOOPBACK_OK) as api:
        job = (await api.upload(pdf(), callback_url="http://127.0.0.1:9/e")).json()["job_id"]
        await api.delete(f"/jobs/{job}")
        (row,) = await delivery_rows(api.db_url, job)
        assert row["state"] == "pending" and row["snapshot"] is not None
        assert (await api.delete(f"/jobs/{job}", params={"erase": "true"})).status_code == 200
        (row,) = await delivery_rows(api.db_url, job)
        assert row["state"] == DeliveryState.CANCELLED
        assert (row["snapshot"], row["payload"], row["next_attempt_at"]) == (None, None, None)
        gone = "SELECT count(*) FROM procrastinate_jobs WHERE id = $1"
        assert await fetchval(api.db_url, gone, row["queue_job_id"]) == 0
        assert (await api.get(f"/jobs/{job}/deliveries")).status_code == 410
        # Erasing an active job ends it without any event.
        active = (await api.upload(pdf(), callback_url="http://127.0.0.1:9/e")).json()["job_id"]
        await api.delete(f"/jobs/{active}", params={"erase": "true"})
        assert await delivery_rows(api.db_url, active) == []


async def test_delivery_logs_are_owner_scoped(api_client: ApiClient) -> None:
    env = {"TORI_API_TOKENS": TOKENS, "TORI_SECRET_KEY": "k", **LOOPBACK_OK}
    async with api_client(**env) as api:
        r = await api.post(
            "/jobs",
            files={"file": ("a.pdf", pdf(), "application/pdf")},
            data={"callback_url": "http://127.0.0.1:9/o"},
            headers=APP,
        )
        job, ticket = r.json()["job_id"], r.json()["ticket"]
        await api.delete(f"/jobs/{job}", headers=APP)
        mine = await api.get(f"/jobs/{job}/deliveries", headers=APP)
        assert mine.status_code == 200
        (delivery,) = mine.json()["deliveries"]
        assert delivery["type"] == "job.cancelled" and delivery["state"] == "pending"
        assert delivery["attempts"] == 0 and delivery["log"] == []
        assert delivery["webhook_id"].startswith("msg_")
        other = await api.get(f"/jobs/{job}/deliveries", headers=OPS)
        assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
        nobody = await api.get(f"/jobs/{uuid.uuid4()}/deliveries", headers=APP)
        assert nobody.status_code == 404
        # A browser's ticket reads the job, never its webhook log.
        assert (await api.get(f"/jobs/{job}", params={"ticket": ticket})).status_code == 200
        by_ticket = await api.get(f"/jobs/{job}/deliveries", params={"ticket": ticket})
        assert by_ticket.status_code == 401


async def test_delivery_states_match_the_sql_constraint(db_url: str) -> None:
    definition = await fetchval(
        db_url,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'tori_webhook_deliveries'::regclass AND contype = 'c'",
    )
    assert set(re.findall(r"'(\w+)'::text", definition)) == {str(s) for s in DeliveryState}
