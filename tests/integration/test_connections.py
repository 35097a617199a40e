"""Round trips the connection pools save (worker/connector.py, store/db.py), on a real Postgres."""

from typing import Any

import psycopg_pool
import pytest

from tests.helpers import wait_for
from tori_ingest.store.db import create_pool
from tori_ingest.worker import connector as queue_connector


async def test_queue_connections_are_autocommit_and_not_probed_when_just_returned(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes: list[Any] = []
    real_probe = psycopg_pool.AsyncConnectionPool.check_connection

    async def counting_probe(conn: Any) -> None:
        probes.append(conn)
        await real_probe(conn)

    monkeypatch.setattr(psycopg_pool.AsyncConnectionPool, "check_connection", counting_probe)
    connector = queue_connector.connector(db_url, max_size=1)
    await connector.open_async()
    try:
        for _ in range(5):
            row = await connector.execute_query_one_async("SELECT 1 AS one")
            assert row["one"] == 1
        async with connector.pool.connection() as conn:
            assert conn.autocommit  # no BEGIN/COMMIT around Procrastinate's single statements
        assert len(probes) <= 1  # only the first checkout of the new connection is probed
        before = len(probes)
        # The pool takes a connection back in a task of its own: once it is back, forget when
        # (as if returned long ago), and the next checkout is probed again.
        await wait_for(lambda: queue_connector._returned, 10, "the connection back in the pool")
        queue_connector._returned.clear()
        await connector.execute_query_one_async("SELECT 1 AS one")
        assert len(probes) == before + 1
    finally:
        await connector.close_async()


async def test_our_pool_releases_without_a_reset_query(db_url: str) -> None:
    """A session setting survives release: proof that no RESET ALL (nor the rest of asyncpg's
    reset query) went to the server — one round trip saved on every release."""
    db = await create_pool(db_url, min_size=1, max_size=1)
    try:
        async with db.acquire() as conn:
            await conn.execute("SET application_name = 'tori-reset-probe'")
        async with db.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "tori-reset-probe"
            async with conn.transaction():
                await conn.execute("SELECT 1")
        async with db.acquire() as conn:  # asyncpg still leaves no transaction open
            assert not conn.is_in_transaction()
    finally:
        await db.close()
