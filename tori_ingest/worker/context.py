"""What a copy's workers need from the process they run in (built by `service`)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from tori_ingest.core.errors import Unavailable
from tori_ingest.core.settings import Settings
from tori_ingest.store.backend import Storage
from tori_ingest.store.db import DB_UNAVAILABLE_ERRORS
from tori_ingest.worker.pool import Pool

# A dependency's outage, not the job's fault: the queue runs the job (or part) again later.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (*DB_UNAVAILABLE_ERRORS, Unavailable)


class RunAgain(Exception):
    """Raised by a run that gave its queue entry back: the queue runs it again after backoff
    (a split job's part whose pool process died)."""


@dataclass
class WorkerContext:
    settings: Settings
    db: asyncpg.Pool
    storage: Storage
    pool: Pool
