"""Settings: one typed source; a bad value stops start-up with one line naming it."""

from __future__ import annotations

import json
import os

import pytest

from tori_ingest.core.settings import Settings, SettingsError

from .test_cli import cli


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TORI_MAX_UPLOAD_MB": "-5"}, "TORI_MAX_UPLOAD_MB"),
        ({"TORI_POOL_SIZE": "many"}, "TORI_POOL_SIZE"),
        ({"TORI_INSECURE": "maybe"}, "TORI_INSECURE"),
        ({"TORI_LOG_FORMAT": "xml"}, "TORI_LOG_FORMAT"),
        ({"PORT": "70000"}, "PORT"),
        ({"TORI_MAX_ATTEMPTS": "0"}, "TORI_MAX_ATTEMPTS"),
        ({"TORI_STORAGE_URL": "ftp://files.example.com/x"}, "TORI_STORAGE_URL"),
        ({"TORI_STORAGE_URL": "s3://"}, "TORI_STORAGE_URL"),
        ({"TORI_IMPORT_URL": "/srv/import"}, "TORI_IMPORT_URL"),
    ],
)
def test_bad_values_are_refused_by_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.load(env)


def test_defaults_are_resolved() -> None:
    settings = Settings.load({"TORI_DATA_DIR": "/srv/tori"})
    assert settings.tori_pool_size == (os.cpu_count() or 1)
    assert str(settings.tori_storage_dir) == "/srv/tori/files"
    assert settings.tori_storage_url == "file:///srv/tori/files"
    bucket = Settings.load({"TORI_STORAGE_URL": "s3://docs/prod/", "TORI_STORAGE_DIR": "/x"})
    assert bucket.tori_storage_url == "s3://docs/prod"  # the URL wins over the directory
    assert settings.tori_auto_migrate is True  # embedded
    assert Settings.load({"DATABASE_URL": "postgresql://db/x"}).tori_auto_migrate is False
    assert Settings.load(
        {"TORI_AUTO_MIGRATE": "1", "DATABASE_URL": "postgresql://db/x"}
    ).tori_auto_migrate
    unset = Settings.load({"TORI_POOL_SIZE": ""})  # empty = unset
    assert unset.tori_pool_size == (os.cpu_count() or 1)


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
