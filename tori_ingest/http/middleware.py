"""HTTP plumbing every route shares: request ids, the error envelope, JSON via orjson.

One pure-ASGI middleware so that even a crash or an unreachable database is answered with
the envelope and an `X-Request-ID`, and the id is on every log line of the request.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tori_ingest.core.errors import ToriError
from tori_ingest.core.logs import request_id_var
from tori_ingest.core.models import ErrorBody, ErrorEnvelope
from tori_ingest.core.vocab import ErrorCode
from tori_ingest.store.db import DB_UNAVAILABLE_ERRORS

log = logging.getLogger(__name__)

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class JSON(JSONResponse):
    """A response model (or a list of them) as JSON; anything else through orjson."""

    def render(self, content: Any) -> bytes:
        if isinstance(content, BaseModel):
            return content.model_dump_json().encode()
        if isinstance(content, list) and content and isinstance(content[0], BaseModel):
            return orjson.dumps([m.model_dump(mode="json") for m in content])
        return orjson.dumps(content)


def error_response(
    code: ErrorCode, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The envelope; the status is the code's own (the one place codes become statuses)."""
    body = ErrorEnvelope(
        error=ErrorBody(code=code, message=message, request_id=request_id_var.get())
    )
    return JSON(body, status_code=code.http_status, headers=headers)


async def tori_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ToriError)
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return error_response(exc.code, exc.message, headers)


_HTTP_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    401: ErrorCode.UNAUTHORIZED,
}


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route, wrong method) in the envelope."""
    status = getattr(exc, "status_code", 500)
    code = _HTTP_CODES.get(status, ErrorCode.BAD_REQUEST if status < 500 else ErrorCode.INTERNAL)
    headers = getattr(exc, "headers", None)
    return error_response(code, str(getattr(exc, "detail", "")) or code, headers)


def escaped_code(exc: BaseException) -> ErrorCode:
    """The code `RequestContext` answers for an exception that escaped the app.

    One mapping for both: the request metrics (inside `RequestContext`) see the exception, not
    the answer, and must count the status the client actually got (a 503, not a 500).
    """
    if isinstance(exc, ToriError):
        return exc.code
    if isinstance(exc, DB_UNAVAILABLE_ERRORS):
        return ErrorCode.UNAVAILABLE
    return ErrorCode.INTERNAL


class RequestContext:
    """Assign/propagate X-Request-ID; turn unexpected exceptions into 500/503 envelopes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        rid = sent if _VALID_ID.match(sent) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            code, expected = escaped_code(exc), True
            if isinstance(exc, ToriError):  # raised where no handler catches (e.g. WebSocket)
                log.warning(exc.message, extra={"event": f"http.{exc.code}"})
                message = exc.message
            elif code is ErrorCode.UNAVAILABLE:
                log.warning(
                    "database unavailable", extra={"event": "db.unavailable", "error": repr(exc)}
                )
                message = "the database is unavailable; retry"
            else:
                log.exception("unhandled error", extra={"event": "http.unhandled"})
                message, expected = "internal error; see the server log", False
            if scope["type"] == "http" and not started:
                await error_response(code, message)(scope, receive, send_with_id)
            elif not expected:
                raise
        finally:
            request_id_var.reset(token)
