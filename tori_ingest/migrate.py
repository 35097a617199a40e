"""Schema migrations: Procrastinate's schema, then `sql/NNN_name.sql` in order, each once.

A session advisory lock serialises concurrent `migrate` runs (two copies starting at once);
each file runs in its own transaction together with its row in `tori_migrations`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import asyncpg
from procrastinate.schema import SchemaManager

from tori_ingest.resources import resource_dir

log = logging.getLogger(__name__)

LOCK_KEY = 0x70_72_69_6E_67_65_73_74  # any constant shared by every copy of the binary
_FILE = re.compile(r"^(\d{3,})_[\w-]+\.sql$")
PROCRASTINATE_VERSION = 0  # our bookkeeping number for "Procrastinate's schema is installed"


def migration_files(folder: Path | None = None) -> list[tuple[int, Path]]:
    folder = folder or resource_dir("sql")
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _FILE.match(p.name))]
    numbers = [n for n, _ in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two migration files share a number in {folder}")
    return sorted(found)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply whatever is missing; returns the names applied (empty when up to date)."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS tori_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM tori_migrations")}
        steps: list[tuple[int, str, str]] = []
        if PROCRASTINATE_VERSION not in done and not await _procrastinate_present(conn):
            steps.append(
                (PROCRASTINATE_VERSION, "procrastinate schema", SchemaManager.get_schema())
            )
        for number, path in migration_files():
            if number not in done:
                steps.append((number, path.name, path.read_text(encoding="utf-8")))
        for number, name, sql in steps:
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO tori_migrations (version, name) VALUES ($1, $2)", number, name
                )
            log.info("applied migration", extra={"migration": name})
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    return applied


async def migrate_url(url: str) -> list[str]:
    """`migrate` on a fresh connection to `url` (the CLI, start-up, tests, bench)."""
    conn = await asyncpg.connect(url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def _procrastinate_present(conn: asyncpg.Connection) -> bool:
    """A database shared with another Procrastinate app already has its schema."""
    return await conn.fetchval("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
