"""Settings through the CLI: a bad value stops start-up with one line naming it."""

from __future__ import annotations

import json
import os

from tests.helpers import cli


def test_invalid_setting_stops_the_cli_with_one_line() -> None:
    out = cli("serve", TORI_MAX_UPLOAD_MB="-5")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "TORI_MAX_UPLOAD_MB" in lines[0], out.stderr


def test_config_prints_resolved_values_and_masks_query_passwords() -> None:
    out = cli("config", DATABASE_URL="postgresql://db/x?user=u&password=hunter2")
    printed = json.loads(out.stdout)
    assert printed["TORI_POOL_SIZE"] == (os.cpu_count() or 1)
    assert "hunter2" not in out.stdout and "password=" in printed["DATABASE_URL"]


def test_worker_on_an_unmigrated_database_names_the_fix(empty_db_url: str) -> None:
    out = cli("worker", DATABASE_URL=empty_db_url, TORI_SPACY_MODEL="blank:en", TORI_POOL_SIZE="1")
    assert out.returncode == 2
    assert "run `tori-ingest migrate`" in out.stderr and out.stderr.count("\n") == 1, out.stderr
