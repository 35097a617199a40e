"""What a copy's workers need from the process they run in (built by `service`)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from tori_ingest.core.settings import Settings
from tori_ingest.store.backend import Storage
from tori_ingest.worker.pool import Pool


@dataclass
class WorkerContext:
    settings: Settings
    db: asyncpg.Pool
    storage: Storage
    pool: Pool
