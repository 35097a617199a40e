"""Webhooks without a database: address policy, retry schedule, signatures, one try."""

from __future__ import annotations

import base64
import ipaddress
import random
from datetime import UTC, datetime

import orjson
import pytest
from standardwebhooks import Webhook

from tests.helpers import LOOPBACK_OK, Receiver
from tests.helpers import WEBHOOK_SECRET as SECRET
from tori_ingest.core import webhooks as policy
from tori_ingest.core.settings import Settings
from tori_ingest.worker.delivery import Sender, signed_headers

OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()


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
