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
from urllib.parse import unquote_plus

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
# Secrets that can ride in a URL (a WebSocket's ?token=, a browser's ?ticket=, a DSN's
# password): matched by the parameter's decoded name, so `?tick%65t=` is caught too.
_SECRET_NAMES = frozenset(
    {"token", "ticket", "password", "secret", "api_key", "apikey", "key", "access_token", "sig"}
)
_QUERY_PARAM = re.compile(r"([?&;])([^=&\s\"';?]+)=([^&\s\"';]*)")
# Headers that carry credentials, as websockets and uvicorn log them at DEBUG ("< cookie: …").
_SECRET_HEADER = re.compile(
    r"(?im)\b(authorization|proxy-authorization|cookie|set-cookie|x-tori-ticket)"
    r"(\s*[:=]\s*|'\s*,\s*[b]?')[^\r\n'\"]*"
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',]+")


def redact(text: str) -> str:
    """`?token=abc` → `?token=***` (ticket, password, secret, key… by decoded name), and the
    values of credential headers and bearer tokens → `***`."""

    def param(m: re.Match[str]) -> str:
        name = unquote_plus(m.group(2)).strip().lower()
        return f"{m.group(1)}{m.group(2)}=***" if name in _SECRET_NAMES else m.group(0)

    text = _QUERY_PARAM.sub(param, text)
    text = _SECRET_HEADER.sub(r"\1\2***", text)
    return _BEARER.sub(r"\1 ***", text)


class RedactSecrets(logging.Filter):
    """On every record (uvicorn's access and WebSocket lines, websockets' DEBUG handshake
    headers included), at every level: no credential reaches a log line. The message is
    formatted first, so a header name and its value in separate arguments are seen together."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: leave it to the formatter
            return True
        record.msg, record.args = redact(message), ()
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
