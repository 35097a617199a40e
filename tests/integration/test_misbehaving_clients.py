"""A misbehaving client in-process: closing the pool never waits on a held connection."""

from __future__ import annotations

import time

from tests.helpers import fetchval, wait_for
from tori_ingest.store.db import close_pool, create_pool


async def test_closing_the_pool_never_waits_on_a_held_connection(db_url: str) -> None:
    db = await create_pool(db_url, max_size=2)
    held = await db.acquire()
    await held.execute("BEGIN")
    began = time.monotonic()
    await close_pool(db, timeout=1)
    assert time.monotonic() - began < 5
    gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"
    await wait_for(lambda: fetchval(db_url, gone), 10, "the held connection to be closed")
