"""Migrations on a real Postgres: once each, concurrent copies, Procrastinate upgrades."""

from __future__ import annotations

import asyncio
import os
import shutil
import zipfile
from pathlib import Path

import asyncpg
import pytest

from tests.helpers import ROOT, run
from tests.helpers import shipped_migrations as _shipped
from tori_ingest.store import migrate

OLDEST_PROCRASTINATE = "3.5.1"  # pyproject's lower bound (3.5.0 is yanked; same SQL)
WHEELS = Path(os.environ.get("TORI_TEST_WHEELS") or ROOT / ".venv" / "wheels")

# Every Procrastinate object, as a sorted list of (kind, name, definition): equal lists mean
# the same functions (signature, result, body), columns, types and enum labels, triggers,
# indexes, constraints and sequences.
CATALOG = r"""
SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       format_type(p.prorettype, NULL) || ' ' || p.prokind::text || ' ' || md5(p.prosrc)
FROM pg_proc p WHERE p.proname LIKE 'procrastinate\_%'
UNION ALL
SELECT 'column', c.relkind::text || ' ' || c.relname || '.' || a.attname,
       format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relname LIKE 'procrastinate\_%' AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
UNION ALL
SELECT 'type', t.typname::text, t.typtype::text || coalesce(' ' || (
           SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
           FROM pg_enum e WHERE e.enumtypid = t.oid), '')
FROM pg_type t WHERE t.typname LIKE 'procrastinate\_%'
UNION ALL
SELECT 'trigger', tg.tgname, pg_get_triggerdef(tg.oid)
FROM pg_trigger tg WHERE tg.tgname LIKE 'procrastinate\_%' AND NOT tg.tgisinternal
UNION ALL
SELECT 'index', i.relname, pg_get_indexdef(i.oid)
FROM pg_class i WHERE i.relname LIKE 'procrastinate\_%' AND i.relkind IN ('i', 'I')
UNION ALL
SELECT 'constraint', c.conrelid::regclass || '.' || c.conname, pg_get_constraintdef(c.oid)
FROM pg_constraint c WHERE c.conname LIKE 'procrastinate\_%'
UNION ALL
SELECT 'sequence', s.relname, ''
FROM pg_class s WHERE s.relname LIKE 'procrastinate\_%' AND s.relkind = 'S'
ORDER BY 1, 2, 3
"""

# What a tori-ingest from before Procrastinate's upgrades were tracked left behind.
OLD_BOOKKEEPING = """
CREATE TABLE tori_migrations (version integer PRIMARY KEY, name text NOT NULL,
                              applied_at timestamptz NOT NULL DEFAULT now());
INSERT INTO tori_migrations (version, name) VALUES (0, 'procrastinate schema');
"""


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for sql in statements:
            async with conn.transaction():
                await conn.execute(sql)
    finally:
        await conn.close()


async def _fetch(url: str, query: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


def _catalog(url: str) -> list[tuple[object, ...]]:
    return run(_fetch(url, CATALOG))


def _recorded(url: str) -> list[str]:
    rows = run(_fetch(url, "SELECT name FROM tori_procrastinate_migrations ORDER BY name"))
    return [name for (name,) in rows]


def _ours() -> list[str]:
    return [p.name for _, p in migrate.migration_files()]


def test_migrate_twice_applies_once(empty_db_url: str) -> None:
    first = run(migrate.migrate_url(empty_db_url))
    assert first[0] == "procrastinate schema"
    assert first[1:] == _ours()  # schema.sql already holds every shipped Procrastinate migration
    assert _recorded(empty_db_url) == _shipped()
    assert run(migrate.migrate_url(empty_db_url)) == []


def test_concurrent_migrations_do_not_collide(empty_db_url: str) -> None:
    async def both() -> list[list[str]]:
        return await asyncio.gather(*(migrate.migrate_url(empty_db_url) for _ in range(3)))

    results = run(both())
    applied = [r for r in results if r]
    assert len(applied) == 1  # one copy did the work, the others found it done

    versions = [v for (v,) in run(_fetch(empty_db_url, "SELECT version FROM tori_migrations"))]
    assert sorted(versions) == [0, *(n for n, _ in migrate.migration_files())]


def test_existing_procrastinate_schema_is_adopted(empty_db_url: str) -> None:
    run(_execute(empty_db_url, migrate.SchemaManager.get_schema()))
    applied = run(migrate.migrate_url(empty_db_url))
    assert "procrastinate schema" not in applied
    assert applied == _ours()  # adopted at the baseline, nothing of Procrastinate's re-run
    assert _recorded(empty_db_url) == [n for n in _shipped() if n <= migrate.PROCRASTINATE_BASELINE]


def test_upgrade_from_oldest_allowed_procrastinate(empty_db_url: str, db_url: str) -> None:
    wheels = sorted(WHEELS.glob(f"procrastinate-{OLDEST_PROCRASTINATE}-*.whl"))
    if not wheels:
        pytest.skip(
            f"no procrastinate-{OLDEST_PROCRASTINATE}-*.whl in {WHEELS} (TORI_TEST_WHEELS); "
            f"fetch it: pip download --no-deps --only-binary=:all: "
            f"procrastinate=={OLDEST_PROCRASTINATE} -d {WHEELS}"
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        old_schema = wheel.read("procrastinate/sql/schema.sql").decode("utf-8")
    run(_execute(empty_db_url, old_schema, OLD_BOOKKEEPING))

    applied = run(migrate.migrate_url(empty_db_url))

    newer = [n for n in _shipped() if n > migrate.PROCRASTINATE_BASELINE]
    assert applied == [*newer, *_ours()]
    assert _catalog(empty_db_url) == _catalog(db_url)  # db_url: migrated from scratch
    assert _recorded(empty_db_url) == _shipped()
    assert run(migrate.migrate_url(empty_db_url)) == []


def test_pending_procrastinate_migrations_reach_the_fresh_schema(
    empty_db_url: str, db_url: str
) -> None:
    """Real shipped files through our runner: a schema built from the migrations before 3.3
    and recorded as such is brought up to date by `migrate` alone."""
    files = migrate.procrastinate_migration_files()
    before = [p for p in files if p.name < "03.03"]
    assert 0 < len(before) < len(files)
    run(_execute(empty_db_url, *(p.read_text(encoding="utf-8") for p in before)))
    run(_execute(empty_db_url, OLD_BOOKKEEPING))

    async def record() -> None:
        conn = await asyncpg.connect(empty_db_url)
        try:
            await conn.execute(
                "CREATE TABLE tori_procrastinate_migrations (name text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            await conn.execute(
                "INSERT INTO tori_procrastinate_migrations SELECT unnest($1::text[])",
                [p.name for p in before],
            )
        finally:
            await conn.close()

    run(record())

    applied = run(migrate.migrate_url(empty_db_url))

    assert applied == [*(p.name for p in files if p not in before), *_ours()]
    assert _catalog(empty_db_url) == _catalog(db_url)


def test_newer_procrastinate_migration_is_applied_once(empty_db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(
        migrate.SchemaManager.get_migrations_path(),
        folder,
        ignore=shutil.ignore_patterns("*.py", "__pycache__"),
    )
    (folder / "99.00.00_01_test.sql").write_text(
        "CREATE TABLE IF NOT EXISTS tori_test_marker (n integer);"
        " INSERT INTO tori_test_marker VALUES (1);",
        encoding="utf-8",
    )
    run(migrate.migrate_url(empty_db_url))  # installed by a tori-ingest with today's files

    first = run(migrate.migrate_url(empty_db_url, procrastinate_migrations=folder))
    second = run(migrate.migrate_url(empty_db_url, procrastinate_migrations=folder))

    assert first == ["99.00.00_01_test.sql"]
    assert second == []
    assert run(_fetch(empty_db_url, "SELECT count(*) FROM tori_test_marker")) == [(1,)]
    assert _recorded(empty_db_url) == [*_shipped(), "99.00.00_01_test.sql"]


def test_procrastinate_api_we_call_exists(db_url: str) -> None:
    async def check(url: str) -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            return await migrate.check_procrastinate_api(conn)
        finally:
            await conn.close()

    assert run(check(db_url)) == []


def test_procrastinate_api_check_reports_a_missing_function(empty_db_url: str) -> None:
    run(migrate.migrate_url(empty_db_url))
    run(
        _execute(
            empty_db_url, "DROP FUNCTION procrastinate_cancel_job_v1(bigint, boolean, boolean)"
        )
    )
    run(_execute(empty_db_url, "ALTER TYPE procrastinate_job_to_defer_v1 DROP ATTRIBUTE lock"))

    async def check() -> list[str]:
        conn = await asyncpg.connect(empty_db_url)
        try:
            return await migrate.check_procrastinate_api(conn)
        finally:
            await conn.close()

    problems = run(check())
    assert len(problems) == 2, problems
    assert "procrastinate_cancel_job_v1(bigint, boolean, boolean)" in problems[0]
    assert "procrastinate_job_to_defer_v1" in problems[1]
