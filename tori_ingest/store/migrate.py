"""Schema migrations: Procrastinate's schema and its upgrades, then `sql/NNN_name.sql`, each once.

A session advisory lock serialises concurrent `migrate` runs (two copies starting at once);
each file runs in its own transaction together with its bookkeeping row, so a crash leaves
either all of a file or none of it.

Procrastinate ships no migration runner, only SQL files named
`{xx.yy.zz}_{ab}_{pre|post}_description.sql` (`SchemaManager.get_migrations_path()`), and
leaves tracking them to us: `tori_procrastinate_migrations` records the names applied.
Procrastinate splits them into `pre` (before deploying the new code) and `post` (after) for
blue-green deploys. We migrate at start, before any worker of the new version runs and with no
old workers expected, which is Procrastinate's documented "with service interruption" path:
apply every pending file, pre and post alike, in name order (what its own Django app and its
migration test do too).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import asyncpg
from procrastinate.schema import SchemaManager

from tori_ingest.core.resources import resource_dir

log = logging.getLogger(__name__)

LOCK_KEY = 0x70_72_69_6E_67_65_73_74  # any constant shared by every copy of the binary
_FILE = re.compile(r"^(\d{3,})_[\w-]+\.sql$")
PROCRASTINATE_VERSION = 0  # our bookkeeping number for "Procrastinate's schema is installed"
PROCRASTINATE_SCHEMA = "procrastinate schema"  # its name in `tori_migrations` and the result

# The newest migration shipped with procrastinate 3.5.0/3.5.1 (the oldest pyproject allows).
# A Procrastinate schema installed before we tracked its migrations is at least this new, so
# every migration up to it counts as applied. Move it only when raising the lower bound.
PROCRASTINATE_BASELINE = "03.04.00_50_post_add_retry_failed_job_procedure.sql"
_PROCRASTINATE_FILE = re.compile(r"^\d{2}\.\d{2}\.\d{2}_\d{2}_[\w-]+\.sql$")

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS tori_migrations (
    version integer PRIMARY KEY, name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS tori_procrastinate_migrations (
    name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
"""
_RECORD_PROCRASTINATE = """
INSERT INTO tori_procrastinate_migrations (name) SELECT unnest($1::text[])
ON CONFLICT (name) DO NOTHING
"""


def migration_files(folder: Path | None = None) -> list[tuple[int, Path]]:
    """Our own migrations by number; a duplicate number would make the order ambiguous."""
    folder = folder or resource_dir("sql")
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _FILE.match(p.name))]
    numbers = [n for n, _ in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two migration files share a number in {folder}")
    return sorted(found)


def procrastinate_migration_files(folder: Path | None = None) -> list[Path]:
    """Procrastinate's shipped migrations in name order (its zero-padded names sort by version).

    An `.sql` file named otherwise means Procrastinate changed its scheme: fail loudly rather
    than silently skip it.
    """
    folder = folder or Path(SchemaManager.get_migrations_path())
    files = sorted(p for p in folder.iterdir() if p.suffix == ".sql")
    odd = [p.name for p in files if not _PROCRASTINATE_FILE.match(p.name)]
    if odd:
        raise RuntimeError(f"unexpected Procrastinate migration names in {folder}: {odd}")
    return files


async def migrate(
    conn: asyncpg.Connection, *, procrastinate_migrations: Path | None = None
) -> list[str]:
    """Apply whatever is missing; returns the names applied (empty when up to date).

    `procrastinate_migrations` replaces the installed package's migrations folder (tests).
    """
    shipped = procrastinate_migration_files(procrastinate_migrations)
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(_BOOKKEEPING)
        applied += await _install_procrastinate(conn, shipped)
        applied += await _upgrade_procrastinate(conn, shipped)
        applied += await _apply_ours(conn)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    return applied


async def migrate_url(url: str, *, procrastinate_migrations: Path | None = None) -> list[str]:
    """`migrate` on a fresh connection to `url` (the CLI, start-up, tests, bench)."""
    conn = await asyncpg.connect(url)
    try:
        return await migrate(conn, procrastinate_migrations=procrastinate_migrations)
    finally:
        await conn.close()


async def _install_procrastinate(conn: asyncpg.Connection, shipped: list[Path]) -> list[str]:
    """Install Procrastinate's schema, or adopt one already there, and seed its bookkeeping.

    `schema.sql` already contains every migration shipped with it, so a fresh install records
    them all. An older schema (ours from before this bookkeeping, or another app's) is taken to
    be at `PROCRASTINATE_BASELINE`; the migrations after it are then applied as pending.
    """
    installed = await conn.fetchval(
        "SELECT EXISTS (SELECT FROM tori_migrations WHERE version = $1)", PROCRASTINATE_VERSION
    )
    if not installed and not await _procrastinate_present(conn):
        async with conn.transaction():
            await conn.execute(SchemaManager.get_schema())
            await conn.execute(
                "INSERT INTO tori_migrations (version, name) VALUES ($1, $2)",
                PROCRASTINATE_VERSION,
                PROCRASTINATE_SCHEMA,
            )
            await conn.execute(_RECORD_PROCRASTINATE, [p.name for p in shipped])
        log.info("applied migration", extra={"migration": PROCRASTINATE_SCHEMA})
        return [PROCRASTINATE_SCHEMA]
    if not await conn.fetchval("SELECT EXISTS (SELECT FROM tori_procrastinate_migrations)"):
        baseline = [p.name for p in shipped if p.name <= PROCRASTINATE_BASELINE]
        await conn.execute(_RECORD_PROCRASTINATE, baseline)
        log.info(
            "recorded Procrastinate migrations as applied",
            extra={"migration": PROCRASTINATE_BASELINE, "count": len(baseline)},
        )
    return []


async def _upgrade_procrastinate(conn: asyncpg.Connection, shipped: list[Path]) -> list[str]:
    """Apply each shipped Procrastinate migration not yet recorded, in name order."""
    done = {r["name"] for r in await conn.fetch("SELECT name FROM tori_procrastinate_migrations")}
    unknown = sorted(done - {p.name for p in shipped})
    if unknown:  # the database is newer than this install's Procrastinate (a downgrade?)
        log.warning("database has unknown Procrastinate migrations", extra={"names": unknown})
    applied: list[str] = []
    for path in shipped:
        if path.name in done:
            continue
        async with conn.transaction():
            await conn.execute(path.read_text(encoding="utf-8"))
            await conn.execute(_RECORD_PROCRASTINATE, [path.name])
        log.info("applied migration", extra={"migration": path.name})
        applied.append(path.name)
    return applied


async def _apply_ours(conn: asyncpg.Connection) -> list[str]:
    """Apply our own `sql/NNN_*.sql` files not yet in `tori_migrations`, in number order."""
    done = {r["version"] for r in await conn.fetch("SELECT version FROM tori_migrations")}
    applied: list[str] = []
    for number, path in migration_files():
        if number in done:
            continue
        async with conn.transaction():
            await conn.execute(path.read_text(encoding="utf-8"))
            await conn.execute(
                "INSERT INTO tori_migrations (version, name) VALUES ($1, $2)", number, path.name
            )
        log.info("applied migration", extra={"migration": path.name})
        applied.append(path.name)
    return applied


async def _procrastinate_present(conn: asyncpg.Connection) -> bool:
    """A database shared with another Procrastinate app already has its schema."""
    return bool(await conn.fetchval("SELECT to_regclass('procrastinate_jobs') IS NOT NULL"))


# What our own SQL calls directly (store/jobs.py), bypassing Procrastinate's Python API, so a
# Procrastinate upgrade that changes them would otherwise only show up as failing statements.
_FUNCTIONS = {  # name: (identity argument types, return type)
    "procrastinate_defer_jobs_v1": ("procrastinate_job_to_defer_v1[]", "bigint[]"),
    "procrastinate_cancel_job_v1": ("bigint, boolean, boolean", "bigint"),
}
_DEFER_TYPE = "procrastinate_job_to_defer_v1"
_DEFER_FIELDS = [  # built with ROW(...) in this order
    ("queue_name", "character varying"),
    ("task_name", "character varying"),
    ("priority", "integer"),
    ("lock", "text"),
    ("queueing_lock", "text"),
    ("args", "jsonb"),
    ("scheduled_at", "timestamp with time zone"),
]
# Columns of its queue table that the reconciler reads (jobs._ORPHANS), and the job states it
# counts as live there.
# worker_id: the dashboard names a running job's copy through it (store/copies.py).
_JOB_COLUMNS = {"id": "bigint", "status": "procrastinate_job_status", "worker_id": "bigint"}
_LIVE_STATES = {"todo", "doing", "aborting"}


async def check_procrastinate_api(conn: asyncpg.Connection) -> list[str]:
    """Problems with the Procrastinate SQL functions and type we call directly; [] when fine."""
    problems: list[str] = []
    rows = await conn.fetch(
        "SELECT proname, oidvectortypes(proargtypes) AS args,"
        " format_type(prorettype, NULL) AS returns FROM pg_catalog.pg_proc"
        " WHERE proname = ANY($1::text[]) AND pg_function_is_visible(oid)",
        list(_FUNCTIONS),
    )
    for name, (args, returns) in _FUNCTIONS.items():
        found = {r["args"]: r["returns"] for r in rows if r["proname"] == name}
        if args not in found:
            problems.append(f"function {name}({args}) is missing (found: {sorted(found)})")
        elif found[args] != returns:
            problems.append(f"function {name}({args}) returns {found[args]}, not {returns}")
    fields = [
        (r["attname"], r["type"])
        for r in await conn.fetch(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type"
            " FROM pg_catalog.pg_type t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid"
            " WHERE t.oid = to_regtype($1) AND a.attnum > 0 AND NOT a.attisdropped"
            " ORDER BY a.attnum",
            _DEFER_TYPE,
        )
    ]
    if fields != _DEFER_FIELDS:
        problems.append(f"type {_DEFER_TYPE} has fields {fields}, expected {_DEFER_FIELDS}")
    return problems + await _check_queue_table(conn)


async def _check_queue_table(conn: asyncpg.Connection) -> list[str]:
    columns = {
        r["attname"]: r["type"]
        for r in await conn.fetch(
            "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_catalog.pg_attribute"
            " WHERE attrelid = to_regclass('procrastinate_jobs') AND attnum > 0"
            " AND NOT attisdropped"
        )
    }
    problems = [
        f"procrastinate_jobs.{name} is missing or not {kind}"
        for name, kind in _JOB_COLUMNS.items()
        if columns.get(name) != kind
    ]
    states = await conn.fetchval(
        "SELECT array_agg(enumlabel::text) FROM pg_catalog.pg_enum"
        " WHERE enumtypid = to_regtype('procrastinate_job_status')"
    )
    if not _LIVE_STATES <= set(states or []):
        problems.append(
            f"procrastinate_job_status lacks {sorted(_LIVE_STATES - set(states or []))}"
        )
    return problems
