"""`tori-ingest storage migrate --from URL`: the stored documents of a former store, copied into
the current one (TORI_STORAGE_URL) after a switch, e.g. from a directory to a bucket.

Keys are content addresses, the same in every store, so a document is copied under its own key
and nothing in Postgres changes. Documents already in the new store are left alone (the command
can be run again after an interruption); purged and erased jobs are not copied. Each document is
streamed (a few MB of memory whatever its size) and checked by its hash on the way.
"""

from __future__ import annotations

from collections import Counter

import asyncpg

from tori_ingest.store.backend import Storage

_KEYS = """
SELECT DISTINCT storage_key FROM tori_jobs
WHERE storage_key IS NOT NULL AND purged_at IS NULL AND erased_at IS NULL
ORDER BY storage_key
"""


async def relocate(db: asyncpg.Pool, source: Storage, target: Storage) -> Counter[str]:
    """Copy every live job's document from `source` to `target`; counts of `copied`,
    `present` (already in the target), `missing` (not in the source either) and `corrupt`
    (bytes that do not hash to their key: not copied)."""
    counts: Counter[str] = Counter()
    for row in await db.fetch(_KEYS):
        key: str = row["storage_key"]
        counts[await _one(key, source, target)] += 1
    return counts


async def _one(key: str, source: Storage, target: Storage) -> str:
    try:
        await target.size(key)
        return "present"
    except FileNotFoundError:
        pass
    writer = target.writer()
    try:
        async for chunk in source.read(key):
            await writer.write(chunk)
        await writer.close()
    except FileNotFoundError:
        await writer.discard()
        return "missing"
    except BaseException:
        await writer.discard()
        raise
    stored, new = await target.commit(writer.temp, writer.sha256)
    if stored != key:  # the bytes are not what their key says: keep nothing of them
        if new:
            await target.remove(stored)
        return "corrupt"
    return "copied"
