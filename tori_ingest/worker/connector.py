"""Procrastinate's connection pool, with fewer round trips per job than its defaults.

Procrastinate runs one stored function per call (fetch, finish, retry, heartbeat) through
a psycopg pool. By default each call costs four round trips: a liveness check on checkout
(an empty query), BEGIN, the call, COMMIT; asyncpg's reset on release (store/db.py) added
more. With both changed, 20 one-page jobs sent 291 statements instead of 556. Here:

- connections are in autocommit: every call is one statement, atomic by itself, so the
  explicit transaction around it only added BEGIN/COMMIT;
- the checkout check skips its round trip for a connection that was returned healthy less
  than `RECHECK_AFTER_S` ago (and still says it is idle and open); older ones are probed
  as before. A connection the server dropped within that window fails its next call like
  any mid-query outage: the worker loop restarts Procrastinate with backoff and the job
  runner's writes are fenced, so nothing is lost (tests/test_reliability.py).
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import procrastinate
import psycopg
import psycopg_pool
from psycopg import pq

RECHECK_AFTER_S = 2.0

_returned: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
    weakref.WeakKeyDictionary()
)


async def _mark_returned(conn: psycopg.AsyncConnection[Any]) -> None:
    _returned[conn] = time.monotonic()


async def _autocommit(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.set_autocommit(True)


async def _check(conn: psycopg.AsyncConnection[Any]) -> None:
    returned = _returned.pop(conn, None)
    idle = conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
    if returned is not None and idle and time.monotonic() - returned < RECHECK_AFTER_S:
        if conn.closed or conn.broken:
            raise psycopg.OperationalError("connection closed")
        return
    await psycopg_pool.AsyncConnectionPool.check_connection(conn)


def _pool(**kwargs: Any) -> psycopg_pool.AsyncConnectionPool:
    kwargs["check"] = _check  # in place of Procrastinate's always-probe check
    kwargs["reset"] = _mark_returned
    kwargs["configure"] = _autocommit  # not kwargs={"autocommit": True}: Procrastinate's
    # LISTEN connection passes the pool's connection kwargs plus its own autocommit=True
    return psycopg_pool.AsyncConnectionPool(**kwargs)


def connector(url: str, *, max_size: int) -> procrastinate.PsycopgConnector:
    """The connector of a worker's Procrastinate app (ingest and webhook queues alike)."""
    return procrastinate.PsycopgConnector(
        conninfo=url, min_size=1, max_size=max_size, pool_factory=_pool
    )
