"""Webhooks on real processes: one `webhook-id` across retries and restarts, delivery latency."""

from __future__ import annotations

import ipaddress
import signal
import socket
import statistics
import time
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import pytest
from standardwebhooks import Webhook

from tests.helpers import (
    LOOPBACK_OK,
    Hit,
    Receiver,
    Server,
    StartServer,
    delivery_rows,
    wait_for,
)
from tests.helpers import WEBHOOK_SECRET as SECRET
from tests.helpers import unique_text_pdf as pdf
from tests.pdfs import prose_pdf
from tori_ingest.core import webhooks as policy
from tori_ingest.core.vocab import DeliveryState


def deliveries_of(srv: Server, job_id: str, headers: dict[str, str] | None = None) -> list[dict]:
    r = srv.client.get(f"/jobs/{job_id}/deliveries", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["deliveries"]


def verified(hit: Hit, secret: str = SECRET) -> dict[str, Any]:
    """The body, verified as a receiver would with the standardwebhooks library."""
    return Webhook(secret).verify(hit.body, hit.headers)


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
