"""Access settings without a server: the secret key derived from the tokens, ticket format."""

from __future__ import annotations

import uuid

from tests.helpers import ACCESS_TOKENS as TOKENS
from tests.helpers import access_settings as settings
from tori_ingest.core.settings import Settings
from tori_ingest.http.auth import Tickets


def test_unset_secret_key_is_derived_from_the_tokens() -> None:
    one, two = (
        Tickets(Settings.load({"TORI_API_TOKENS": TOKENS})),
        Tickets(Settings.load({"TORI_API_TOKENS": TOKENS})),
    )
    job = uuid.uuid4()
    ticket = one.issue(job, "app")
    assert ticket is not None and two.job_of(ticket) == str(job)  # copies agree
    rotated = Tickets(Settings.load({"TORI_API_TOKENS": "app:new-secret"}))
    assert rotated.job_of(ticket) is None


def test_a_ticket_ends_with_its_token_whatever_the_key() -> None:
    """Rotating the creating token's secret, or removing its name, ends its tickets even
    with a fixed TORI_SECRET_KEY; another token's rotation does not."""
    job = uuid.uuid4()
    ticket = Tickets(settings()).issue(job, "app")
    assert ticket is not None and Tickets(settings()).job_of(ticket) == str(job)
    others_rotated = "app:app-secret-1,ops:ops-new,root:root-secret-3"
    assert Tickets(settings(TORI_API_TOKENS=others_rotated)).job_of(ticket) == str(job)
    for tokens in ("app:app-secret-9,ops:ops-secret-2", "ops:ops-secret-2,root:root-secret-3"):
        assert Tickets(settings(TORI_API_TOKENS=tokens)).job_of(ticket) is None
