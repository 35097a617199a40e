"""What the HTTP layer needs from its process, built once by `service`.

The HTTP layer never imports the worker: a pool, when this process runs one, is seen only
through `PoolState` (is it warm, how big), for `/readyz`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import asyncpg
from starlette.requests import HTTPConnection

from tori_ingest.core.settings import Settings
from tori_ingest.http.auth import Tickets
from tori_ingest.http.hub import EventHub
from tori_ingest.http.limits import Admission
from tori_ingest.store.backend import Storage
from tori_ingest.store.reference import Imports


class PoolState(Protocol):
    @property
    def warm(self) -> bool: ...

    @property
    def size(self) -> int: ...


@dataclass
class Context:
    settings: Settings
    db: asyncpg.Pool
    storage: Storage
    pool: PoolState | None = None
    hub: EventHub | None = None
    local_only: bool = False  # auth off on a loopback bind: refuse non-local Host/Origin

    @cached_property
    def tickets(self) -> Tickets | None:
        """Job tickets are issued only with auth on (with auth off anyone may read a job)."""
        return Tickets(self.settings) if self.settings.api_tokens else None

    @cached_property
    def imports(self) -> Imports:
        return Imports(self.settings)

    @cached_property
    def admission(self) -> Admission:
        return Admission(self.settings)


def ctx(conn: HTTPConnection) -> Context:
    return conn.app.state.ctx
