"""Migrations: applied once each, safe to repeat and to run from two copies at once."""

import asyncio

import asyncpg

from tori_ingest import migrate

from .conftest import run


def test_migrate_twice_applies_once(empty_db_url: str) -> None:
    first = run(migrate.migrate_url(empty_db_url))
    assert first[0] == "procrastinate schema"
    assert first[1:] == [p.name for _, p in migrate.migration_files()]
    assert run(migrate.migrate_url(empty_db_url)) == []


def test_concurrent_migrations_do_not_collide(empty_db_url: str) -> None:
    async def both() -> list[list[str]]:
        return await asyncio.gather(*(migrate.migrate_url(empty_db_url) for _ in range(3)))

    results = run(both())
    applied = [r for r in results if r]
    assert len(applied) == 1  # one copy did the work, the others found it done

    async def versions() -> list[int]:
        conn = await asyncpg.connect(empty_db_url)
        try:
            return [r[0] for r in await conn.fetch("SELECT version FROM tori_migrations")]
        finally:
            await conn.close()

    assert sorted(run(versions())) == [0, *(n for n, _ in migrate.migration_files())]


def test_existing_procrastinate_schema_is_adopted(empty_db_url: str) -> None:
    async def go() -> list[str]:
        conn = await asyncpg.connect(empty_db_url)
        try:
            await conn.execute(migrate.SchemaManager.get_schema())
        finally:
            await conn.close()
        return await migrate.migrate_url(empty_db_url)

    assert "procrastinate schema" not in run(go())
