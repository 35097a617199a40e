"""Migrations as shipped: the baseline is one of the package's migrations."""

from __future__ import annotations

from tests.helpers import shipped_migrations as _shipped
from tori_ingest.store import migrate


def test_baseline_is_a_shipped_migration() -> None:
    assert migrate.PROCRASTINATE_BASELINE in _shipped()
