"""Log lines: one JSON object per line (machines) or a readable line (terminals).

Every line has a stable `event` field (given as `extra={"event": ...}`, else derived from the
logger and the message template) and the ids of what is being handled: `request_id` and
`job_id` come from context variables, set once where a request or a job starts.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# Secrets that can ride in a URL (a WebSocket's ?token=, a browser's ?ticket=, a DSN's password)
_SECRET_IN_URL = re.compile(r"(?i)([?&;](?:token|ticket|password|secret)=)[^&\s\"';]+")


def redact(text: str) -> str:
    """`?token=abc` → `?token=***` (and ticket, password, secret)."""
    return _SECRET_IN_URL.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """On every record (uvicorn's access and WebSocket lines included): no secret in a URL
    reaches a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


@contextlib.contextmanager
def bound_job(job_id: object) -> Iterator[None]:
    """Every line logged inside carries this `job_id`."""
    token = job_id_var.set(str(job_id))
    try:
        yield
    finally:
        job_id_var.reset(token)


def _event(record: logging.LogRecord) -> str:
    template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
    slug = _NOT_SLUG.sub("_", template.lower()).strip("_")[:60]
    return f"{record.name}.{slug}"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
    out.setdefault("event", _event(record))
    for name, var in (("request_id", request_id_var), ("job_id", job_id_var)):
        value = var.get()
        if value and name not in out:
            out[name] = value
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        del fields["event"]  # the message says it to a person
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        text = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.name}: "
        text += record.getMessage() + (f"  {extra}" if extra else "")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup(fmt: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "procrastinate"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Procrastinate logs every job start/end at INFO; ours already does, once per job.
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
