"""Webhooks (issue #18): signed, at least once, one `webhook-id` across retries and restarts,
an SSRF guard at submit and after DNS at delivery, owner-scoped delivery logs.

The real-process tests run a receiver on 127.0.0.1 in a thread of this process (so they need
TORI_WEBHOOK_ALLOW_PRIVATE=1) and TORI_TEST_HOOKS=1 for retries in fractions of a second.
"""

from __future__ import annotations

import base64
import ipaddress
import random
import re
import signal
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import orjson
import pytest
from standardwebhooks import Webhook

from tori_ingest.core import webhooks as policy
from tori_ingest.core.settings import Settings
from tori_ingest.core.vocab import DeliveryState
from tori_ingest.store import deliveries
from tori_ingest.worker.delivery import Sender, signed_headers

from .conftest import ApiClient, Server, StartServer, fetchval, wait_for
from .pdfs import make_pdf, prose_pdf

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
TOKENS = "app:app-secret-1,ops:ops-secret-2"
APP = {"Authorization": "Bearer app-secret-1"}
OPS = {"Authorization": "Bearer ops-secret-2"}
LOOPBACK_OK = {"TORI_WEBHOOK_SECRET": SECRET, "TORI_WEBHOOK_ALLOW_PRIVATE": "1"}


def pdf() -> bytes:
    return make_pdf([f"Unique text {uuid.uuid4().hex}."])


# --- a receiver ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    at: float  # time.time() when the request arrived
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver:
    """An HTTP receiver on 127.0.0.1 in a thread: records every request; answers 500 while
    `down`, nothing at all while `hang` (until `release`), else 200."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.down = False
        self.hang = False
        self.release = threading.Event()
        self.answer: tuple[int, dict[str, str], bytes] | None = None  # instead of 200/500
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                hang = receiver.hang
                status = 0 if hang else 500 if receiver.down else 200
                with receiver.lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.hits.append(Hit(at, self.path, headers, body, status))
                if hang:
                    receiver.release.wait(60)
                    return  # the sender is gone by now
                plain = (status, {}, b"no" if status == 500 else b"ok")
                code, extra, content = receiver.answer or plain
                self.send_response(code)
                for name, value in {**extra, "content-length": str(len(content))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def of(self, job_id: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if orjson.loads(h.body)["data"]["job_id"] == job_id]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


async def delivery_rows(db_url: str, job_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url)
    try:
        return await conn.fetch(
            "SELECT * FROM tori_webhook_deliveries WHERE job_id = $1::uuid ORDER BY created_at",
            job_id,
        )
    finally:
        await conn.close()


def deliveries_of(srv: Server, job_id: str, headers: dict[str, str] | None = None) -> list[dict]:
    r = srv.client.get(f"/jobs/{job_id}/deliveries", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["deliveries"]


def verified(hit: Hit, secret: str = SECRET) -> dict[str, Any]:
    """The body, verified as a receiver would with the standardwebhooks library."""
    return Webhook(secret).verify(hit.body, hit.headers)


# --- policy, schedule and signatures (no processes) -----------------------------------------


@pytest.mark.parametrize(
    ("address", "refused_without_flag", "refused_with_flag"),
    [
        ("93.184.216.34", False, False),
        ("2606:4700::1111", False, False),
        ("127.0.0.1", True, False),
        ("::1", True, False),
        ("0.0.0.0", True, False),
        ("10.1.2.3", True, False),
        ("172.16.0.1", True, False),
        ("192.168.1.1", True, False),
        ("100.64.0.1", True, False),  # carrier-grade NAT: not global
        ("fd12::1", True, False),
        ("169.254.1.1", True, False),
        ("fe80::1", True, False),
        ("::ffff:127.0.0.1", True, False),
        ("169.254.169.254", True, True),  # metadata: never
        ("fd00:ec2::254", True, True),
        ("168.63.129.16", True, True),
        ("224.0.0.1", True, True),
    ],
)
def test_address_policy(address: str, refused_without_flag: bool, refused_with_flag: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert bool(policy.address_refusal(ip, allow_private=False)) is refused_without_flag
    assert bool(policy.address_refusal(ip, allow_private=True)) is refused_with_flag


def test_retry_schedule_covers_a_day_and_an_hour_long_outage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for jitter in (0.0, 0.5, 0.999):
        monkeypatch.setattr(random, "random", lambda j=jitter: j)
        tries, gaps = [0.0], []
        while tries[-1] + (gap := policy.retry_delay(len(tries))) <= policy.RETRY_WINDOW_S:
            tries.append(tries[-1] + gap)
            gaps.append(gap)
        assert 8 <= gaps[0] <= 12  # the first retry after about 10 s
        assert gaps == sorted(gaps)  # exponential, then flat at the cap
        assert max(gaps) <= policy.RETRY_CAP_S * (1 + policy.RETRY_JITTER)
        assert tries[-1] > 20 * 3600  # still trying near the end of the day
        assert 25 <= len(tries) <= 40
        # A receiver down for the first hour gets its event within about an hour after.
        assert any(3600 <= x <= 2 * 3600 for x in tries)
    assert policy.retry_delay(1, fast=True) < 0.5 and policy.retry_delay(50, fast=True) <= 2.4


def test_signatures_verify_with_the_library_and_during_rotation() -> None:
    keys = policy.parse_secrets(f"{SECRET} {OTHER_SECRET}")
    body = orjson.dumps({"type": "job.succeeded", "data": {"x": 1}}).decode()
    headers = signed_headers(keys, "msg_abc", body, datetime.now(UTC))
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (SECRET, OTHER_SECRET):
        assert Webhook(secret).verify(body, headers) == {"type": "job.succeeded", "data": {"x": 1}}
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(body.replace("1", "2"), headers)


async def test_a_try_follows_no_redirect_and_keeps_only_an_excerpt(receiver: Receiver) -> None:
    sender = Sender(Settings.load(LOOPBACK_OK))
    try:
        receiver.answer = (307, {"location": receiver.url("/elsewhere")}, b"x" * 100_000)
        outcome = await sender.send(receiver.url("/moved"), "msg_1", '{"a": 1}')
        assert (outcome.status_code, outcome.error, outcome.ok) == (307, "HTTP 307", False)
        assert outcome.excerpt == "x" * 200
        assert [h.path for h in receiver.hits] == ["/moved"]  # never /elsewhere
        receiver.answer = (204, {}, b"")
        assert (await sender.send(receiver.url(), "msg_2", "{}")).ok
    finally:
        await sender.close()
    strict = Sender(Settings.load({"TORI_WEBHOOK_SECRET": SECRET}))
    refused = await strict.send(receiver.url(host="localhost"), "msg_3", "{}")
    assert refused.refused and "loopback" in (refused.error or "")
    assert len(receiver.hits) == 2


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


# --- real processes: a receiver on loopback --------------------------------------------------


def same_view(data: dict[str, Any], view: dict[str, Any]) -> bool:
    """The webhook's `data` is the job's status view (timestamps compared as instants)."""

    def norm(d: dict[str, Any]) -> dict[str, Any]:
        return {
            k: datetime.fromisoformat(v) if k.endswith("_at") and v else v for k, v in d.items()
        }

    return norm(data) == norm(view)


async def test_retries_keep_one_webhook_id_and_body_across_a_restart(
    start_server: StartServer, receiver: Receiver
) -> None:
    env = {"TORI_TEST_HOOKS": "1", **LOOPBACK_OK}
    receiver.down = True
    srv = await start_server(**env)
    job = srv.upload(pdf(), callback_url=receiver.url("/restart")).json()["job_id"]
    await wait_for(lambda: len(receiver.of(job)) >= 2, 60, "two failed tries")
    srv.stop()  # SIGTERM mid-retry: the next try is queued in Postgres, not in this process
    (row,) = await delivery_rows(srv.db_url, job)
    assert row["state"] == "pending" and row["attempts"] >= 2 and row["next_attempt_at"]
    before = len(receiver.of(job))

    again = await start_server(db_url=srv.db_url, **env)
    await wait_for(lambda: len(receiver.of(job)) > before, 60, "a try from the new process")
    receiver.down = False
    await wait_for(lambda: deliveries_of(again, job)[0]["state"] == "delivered", 60, "the delivery")

    hits = receiver.of(job)
    assert [h.answered for h in hits] == [500] * (len(hits) - 1) + [200]
    assert len({h.headers["webhook-id"] for h in hits}) == 1
    assert len({h.body for h in hits}) == 1  # byte for byte the same body
    for hit in hits:  # each try signed afresh (its own timestamp), all verify
        event = verified(hit)
    assert event["type"] == "job.succeeded"
    assert same_view(event["data"], again.status(job))
    assert event["timestamp"] == event["data"]["finished_at"]
    (delivery,) = deliveries_of(again, job)
    assert delivery["webhook_id"] == hits[0].headers["webhook-id"]
    assert delivery["attempts"] == len(hits) and delivery["next_attempt_at"] is None
    assert [t["status_code"] for t in delivery["log"]] == [h.answered for h in hits]
    assert delivery["log"][-1]["response_excerpt"] == "ok"
    assert delivery["last_status_code"] == 200 and delivery["delivered_at"]
    metrics = again.client.get("/metrics").text
    assert 'tori_webhook_attempts_total{outcome="delivered"} 1.0' in metrics
    assert 'tori_webhook_deliveries{state="delivered"} 1.0' in metrics


async def test_a_try_cut_short_by_a_killed_service_is_made_again(
    start_server: StartServer, receiver: Receiver
) -> None:
    """SIGKILL while the receiver holds a try: nothing was recorded, the queue job is left
    `doing` under a dead worker; the next process gives it back and the try is made again,
    with the same webhook-id and body (at least once)."""
    env = {"TORI_TEST_HOOKS": "1", "TORI_SHUTDOWN_GRACE_S": "1", **LOOPBACK_OK}
    receiver.hang = True
    srv = await start_server(**env)
    job = srv.upload(pdf(), callback_url=receiver.url("/killed")).json()["job_id"]
    await wait_for(lambda: receiver.of(job), 60, "the first try to reach the receiver")
    srv.stop(signal.SIGKILL)
    receiver.hang = False
    receiver.release.set()
    (row,) = await delivery_rows(srv.db_url, job)
    assert (row["state"], row["attempts"]) == ("pending", 0)

    again = await start_server(db_url=srv.db_url, **env)
    await wait_for(
        lambda: deliveries_of(again, job)[0]["state"] == "delivered", 90, "the try again"
    )
    first, second = receiver.of(job)
    assert (first.answered, second.answered) == (0, 200)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body and verified(second)["type"] == "job.succeeded"
    (delivery,) = deliveries_of(again, job)
    assert [t["status_code"] for t in delivery["log"]] == [200]


async def test_every_terminal_state_reaches_the_global_url(
    start_server: StartServer, receiver: Receiver
) -> None:
    """TORI_WEBHOOK_URL: succeeded, failed, cancelled (while running) and a job born
    succeeded (dedup) each POST their event, with no callback_url in the submits."""
    srv = await start_server(
        TORI_TEST_HOOKS="1", TORI_WEBHOOK_URL=receiver.url("/all"), **LOOPBACK_OK
    )
    data = pdf()
    good = srv.upload(data).json()["job_id"]
    bad = srv.upload(b"%PDF-1.4\n this is not a PDF body at all").json()["job_id"]
    slow = srv.upload(hooked_slow()).json()["job_id"]
    await wait_for(lambda: srv.status(slow)["status"] == "running", 60, "the slow job to run")
    srv.client.delete(f"/jobs/{slow}")
    await srv.wait_job(good)
    twin = srv.upload(data).json()
    assert twin["deduplicated"]
    expected = {
        good: "job.succeeded",
        bad: "job.failed",
        slow: "job.cancelled",
        twin["job_id"]: "job.succeeded",
    }
    for job, kind in expected.items():
        hits = await wait_for(lambda j=job: receiver.of(j), 60, f"the event of {job}")
        assert [verified(h)["type"] for h in hits] == [kind]
        assert verified(hits[0])["data"]["status"] == srv.status(job)["status"]
    assert verified(receiver.of(bad)[0])["data"]["error"]["code"] == "corrupt_pdf"
    assert {h.path for h in receiver.hits} == {"/all"}


def hooked_slow() -> bytes:
    data = prose_pdf(1)
    head, rest = data.split(b"\n", 1)
    return head + b"\n%tori-test-slow\n" + rest


async def test_delivery_refuses_a_name_that_resolves_to_an_internal_address(
    start_server: StartServer, receiver: Receiver
) -> None:
    """The submit-time check sees only the URL; this name is not an address and not
    `localhost`, so it passes, and the worker refuses it after resolving it."""
    name = socket.gethostname().lower()
    addresses = {i[4][0] for i in socket.getaddrinfo(name, receiver.port)}
    assert policy.literal_address(name) is None and "localhost" not in name
    if any(ipaddress.ip_address(a).is_global for a in addresses):
        pytest.skip(f"{name} resolves to a public address here ({addresses})")
    srv = await start_server(TORI_TEST_HOOKS="1", TORI_WEBHOOK_SECRET=SECRET)
    sneaky = srv.upload(pdf(), callback_url=receiver.url("/sneaky", host=name))
    assert sneaky.status_code == 202, sneaky.text
    job = sneaky.json()["job_id"]
    await srv.wait_job(job)
    (delivery,) = await wait_for(
        lambda: [d for d in deliveries_of(srv, job) if d["state"] != "pending"], 60, "refusal"
    )
    assert delivery["state"] == "failed" and delivery["attempts"] == 1  # never retried
    assert f"refused: {name} resolves to" in delivery["last_error"]
    assert delivery["log"][0]["status_code"] is None
    assert receiver.hits == []
    assert (srv.upload(pdf(), callback_url=receiver.url())).status_code == 400  # literal


async def test_an_erased_job_sends_nothing_more(
    start_server: StartServer, receiver: Receiver
) -> None:
    receiver.down = True
    srv = await start_server(TORI_TEST_HOOKS="1", **LOOPBACK_OK)
    job = srv.upload(pdf(), callback_url=receiver.url("/erased")).json()["job_id"]
    await wait_for(lambda: len(receiver.of(job)) >= 2, 60, "failed tries")
    assert srv.client.delete(f"/jobs/{job}", params={"erase": "true"}).status_code == 200
    erased_at = time.time()
    sent = len(receiver.of(job))  # a try already in flight may still land: counted below
    (row,) = await delivery_rows(srv.db_url, job)
    assert row["state"] == DeliveryState.CANCELLED and row["payload"] is None
    receiver.down = False
    # Another job's delivery goes through the same worker, and every retry the erased one
    # could have had (at most FAST_CAP_S apart) is due by now: none came.
    later = srv.upload(pdf(), callback_url=receiver.url("/later")).json()["job_id"]
    horizon = erased_at + policy.FAST_CAP_S * 2 + 1
    await wait_for(lambda: receiver.of(later) and time.time() > horizon, 60, "a later delivery")
    assert len(receiver.of(job)) <= sent + 1
    assert all(h.answered == 500 for h in receiver.of(job))


async def test_delivery_latency_from_terminal_state_to_receiver(
    start_server: StartServer, receiver: Receiver
) -> None:
    """50 jobs through the pool, default (production) delivery settings: the time from each
    job's terminal state (`finished_at`, the start of the transaction that ended it) to the
    receiver reading the request."""
    srv = await start_server(TORI_WEBHOOK_URL=receiver.url("/latency"), **LOOPBACK_OK)
    jobs = [srv.upload(pdf()).json()["job_id"] for _ in range(50)]
    await wait_for(lambda: len(receiver.hits) >= len(jobs), 180, "50 deliveries")
    conn = await asyncpg.connect(srv.db_url)
    try:
        finished = {
            str(r["id"]): r["t"]
            for r in await conn.fetch(
                "SELECT id, extract(epoch FROM finished_at)::float8 AS t FROM tori_jobs"
                " WHERE id = ANY($1::uuid[])",
                [uuid.UUID(j) for j in jobs],
            )
        }
        # Where the time goes: queue pickup to the try's start, and the try itself.
        parts = await conn.fetch(
            "SELECT extract(epoch FROM a.at - d.created_at) * 1000 AS pickup, a.duration_ms"
            " FROM tori_webhook_attempts a JOIN tori_webhook_deliveries d ON d.id = a.delivery_id"
            " WHERE d.job_id = ANY($1::uuid[])",
            [uuid.UUID(j) for j in jobs],
        )
    finally:
        await conn.close()
    pickup = statistics.median(float(r["pickup"]) for r in parts)
    sending = statistics.median(r["duration_ms"] for r in parts)
    latency = sorted(
        (h.at - finished[orjson.loads(h.body)["data"]["job_id"]]) * 1000 for h in receiver.hits
    )
    p50 = statistics.median(latency)
    p99 = latency[min(len(latency) - 1, round(0.99 * len(latency)) - 1)]
    print(f"\nwebhook delivery latency over {len(latency)} jobs: p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms, max {latency[-1]:.1f} ms; medians: terminal state to the "
          f"try {pickup:.1f} ms, the try {sending:.1f} ms")  # fmt: skip
    assert all(h.answered == 200 for h in receiver.hits)
    assert p99 < 2000, latency
