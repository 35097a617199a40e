"""The SQL constraints of a migrated database are in step with the enums."""

from __future__ import annotations

import re

import asyncpg

from tori_ingest.core.vocab import Lane, Status


async def test_sql_constraints_match_the_enums(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            """SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
               WHERE conrelid = 'tori_jobs'::regclass AND contype = 'c'"""
        )
    finally:
        await conn.close()
    allowed = {}
    for row in rows:
        column = re.search(r"\(\((\w+) = ANY", row["def"]) or re.search(r"\((\w+) ", row["def"])
        assert column is not None, row["def"]
        allowed[column.group(1)] = set(re.findall(r"'(\w+)'::text", row["def"]))
    assert allowed["status"] == {str(s) for s in Status}
    assert allowed["lane"] == {str(lane) for lane in Lane}
