"""Effective settings: `config/defaults.toml` overlaid by the environment.

The defaults live in one file so that the README, `tori-ingest config` and the code cannot
disagree; this module only parses and types them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tori_ingest.resources import resource_dir


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def _defaults() -> dict[str, Any]:
    with (resource_dir("config") / "defaults.toml").open("rb") as f:
        return tomllib.load(f)


def _coerce(name: str, raw: str, like: Any) -> Any:
    if isinstance(like, bool):
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{name}={raw!r}: expected a boolean (1/0, true/false)")
    if isinstance(like, int):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r}: expected an integer") from None
    return raw


@dataclasses.dataclass(frozen=True)
class Settings:
    """Typed view of every SPEC §10 setting (field name = env var name, lower-cased)."""

    database_url: str
    port: int
    tori_host: str
    tori_data_dir: str
    tori_storage_dir: str
    tori_import_dir: str
    tori_spacy_model: str
    tori_pool_size: int
    tori_max_upload_mb: int
    tori_max_pages: int
    tori_job_timeout_s: int
    tori_max_memory_mb: int
    tori_max_tasks_per_child: int
    tori_max_attempts: int
    tori_shutdown_grace_s: int
    tori_retention_days: int
    tori_api_tokens: str
    tori_cors_origins: str
    tori_auto_migrate: str
    tori_insecure: bool
    tori_log_format: str
    tori_log_level: str
    tori_metrics_port: int
    tori_test_hooks: bool

    @classmethod
    def load(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for name, default in _defaults().items():
            raw = env.get(name)
            values[name.lower()] = default if raw is None else _coerce(name, raw, default)
        return cls(**values)

    # Derived values: computed here once so callers never re-derive them differently.

    @property
    def embedded(self) -> bool:
        return not self.database_url

    @property
    def data_dir(self) -> Path:
        return Path(self.tori_data_dir).resolve()

    @property
    def storage_dir(self) -> Path:
        return (
            Path(self.tori_storage_dir).resolve()
            if self.tori_storage_dir
            else self.data_dir / "files"
        )

    @property
    def import_dir(self) -> Path | None:
        return Path(self.tori_import_dir).resolve() if self.tori_import_dir else None

    @property
    def pool_size(self) -> int:
        return self.tori_pool_size if self.tori_pool_size > 0 else (os.cpu_count() or 1)

    @property
    def max_upload_bytes(self) -> int:
        return self.tori_max_upload_mb * 1024 * 1024

    @property
    def auto_migrate(self) -> bool:
        if self.tori_auto_migrate == "":
            return self.embedded
        return _coerce("TORI_AUTO_MIGRATE", self.tori_auto_migrate, True)

    @property
    def api_tokens(self) -> list[str]:
        return [t.strip() for t in self.tori_api_tokens.split(",") if t.strip()]

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.tori_cors_origins.split(",") if o.strip()]

    @property
    def log_format(self) -> str:
        if self.tori_log_format:
            return self.tori_log_format
        return "console" if sys.stderr.isatty() else "json"

    def public(self) -> dict[str, Any]:
        """Every setting by its env name, secrets masked, as `tori-ingest config` prints it."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "database_url" and value:
                value = mask_url(value)
            elif field.name == "tori_api_tokens" and value:
                value = f"<{len(self.api_tokens)} token(s)>"
            out[field.name.upper()] = value
        return out


def mask_url(url: str) -> str:
    """Hide the password of a database URL for logs and `config`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
