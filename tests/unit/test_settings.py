"""Settings: one typed source; bad values refused by name, defaults resolved."""

from __future__ import annotations

import os

import pytest

from tori_ingest.core.settings import Settings, SettingsError


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
