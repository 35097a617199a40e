"""Dashboard sessions (`sql/012_sessions.sql`): open, look up, end, purge."""

from __future__ import annotations

from datetime import timedelta

import asyncpg


async def open_session(
    db: asyncpg.Pool, sid_hash: bytes, name: str, token_fp: bytes, ttl_s: float
) -> None:
    await db.execute(
        "INSERT INTO tori_sessions (id, name, token_fp, expires_at)"
        " VALUES ($1, $2, $3, now() + $4::interval)",
        sid_hash,
        name,
        token_fp,
        timedelta(seconds=ttl_s),
    )


async def find(db: asyncpg.Pool, sid_hash: bytes) -> tuple[str, bytes] | None:
    """(token name, token fingerprint) of a live session."""
    row = await db.fetchrow(
        "SELECT name, token_fp FROM tori_sessions WHERE id = $1 AND expires_at > now()",
        sid_hash,
    )
    return (row["name"], bytes(row["token_fp"])) if row is not None else None


async def end(db: asyncpg.Pool, sid_hash: bytes) -> None:
    await db.execute("DELETE FROM tori_sessions WHERE id = $1", sid_hash)


async def purge_expired(db: asyncpg.Pool) -> int:
    status = await db.execute("DELETE FROM tori_sessions WHERE expires_at <= now()")
    return int(status.split()[-1])
