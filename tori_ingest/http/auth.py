"""Who is asking: named bearer tokens, job tickets for browsers, and the local-only guard.

- `TORI_API_TOKENS="app:secret,ops:secret"`: a token's name owns the jobs it creates; names in
  `TORI_ADMIN_TOKENS` see every job. Tokens are compared in constant time, all of them each
  time. A WebSocket may pass `?token=` (browsers cannot set its headers).
- A ticket (HMAC-signed job id + expiry) reads one job and nothing else: `GET /jobs/{id}`,
  `/result`, `/file`, `/ws/jobs/{id}`, and `/ws` subscribed to that id. The server of a web app
  hands it to the browser, which never holds the app's token.
- The dashboard's session cookie (`http.session`, set by `POST /ui/login`) stands for a token
  name in a browser; a token never has to appear in a URL.
- With auth off on a loopback bind, requests whose Host or Origin is not local are refused:
  a web page in the user's browser must not drive the service (DNS rebinding, drive-by upload).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import struct
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
from starlette.datastructures import QueryParams
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from tori_ingest.core.settings import Settings, is_loopback
from tori_ingest.core.vocab import ErrorCode
from tori_ingest.http.middleware import error_response
from tori_ingest.http.session import (
    CSRF_HEADER,
    Sessions,
    TokenKeys,
    cookie_of,
    match_token,
    same_origin,
)
from tori_ingest.store import limits as counters

# No token needed: probes, the API's own description, the dashboard's page and its login (no
# data in any of them: the page's data comes from /ui/state, which needs a token or a session).
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/openapi.json", "/docs", "/", "/ui", "/ui/login", "/ui/logout"}
)
OPEN_PREFIXES = ("/docs/static/", "/ui/static/")
CLOSE_UNAUTHORIZED = 4401
_TICKET_CONTEXT = b"tori-ingest ticket v2\x00"
MAX_NAME_BYTES = 200
MAX_BLOCKED = 10_000  # addresses remembered as over the failed-authentication limit
_TICKET_READS = re.compile(r"^/jobs/([0-9a-fA-F-]{36})(/result|/file)?$")
_TICKET_SOCKET = re.compile(r"^/ws/jobs/([0-9a-fA-F-]{36})$")


@dataclass(frozen=True)
class Principal:
    """The caller. `owner` filters every job query (None: sees all); a ticket reads one job."""

    name: str | None
    admin: bool = False
    ticket_job: str | None = None

    @property
    def owner_filter(self) -> str | None:
        return None if self.admin or self.ticket_job else self.name

    @property
    def bucket(self) -> str:
        return f"ticket:{self.ticket_job}" if self.ticket_job else f"token:{self.name}"


ANONYMOUS = Principal(name=None, admin=True)  # auth off: everyone sees everything


def principal(conn: HTTPConnection) -> Principal:
    """Who is asking (set by `Auth` on every request that got this far)."""
    return conn.scope.get("state", {}).get("principal", ANONYMOUS)


class Tickets:
    """Sign and check job tickets: every copy with the same tokens (and key) accepts the
    others'. A ticket is signed with a key of the token name that created the job
    (`TokenKeys`), so removing that name or rotating its secrets ends its tickets."""

    def __init__(self, settings: Settings) -> None:
        self.keys = TokenKeys(settings)
        self.ttl = settings.tori_ticket_ttl_s

    def issue(
        self, job_id: uuid.UUID | str, owner: str | None, now: float | None = None
    ) -> str | None:
        """None when no current token has the owner's name (a job created with auth off)."""
        keys = self.keys.of(owner or "")
        if not keys:
            return None
        assert owner is not None
        expires = int((time.time() if now is None else now) + self.ttl)
        payload = uuid.UUID(str(job_id)).bytes + struct.pack(">I", expires) + owner.encode()
        return base64.urlsafe_b64encode(payload + _mac(keys[0], payload)).rstrip(b"=").decode()

    def job_of(self, ticket: str) -> str | None:
        """The job a valid, unexpired ticket reads; None for anything else."""
        try:
            raw = base64.urlsafe_b64decode(ticket + "=" * (-len(ticket) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) < 37 or len(raw) > 36 + MAX_NAME_BYTES:
            return None
        payload, mac = raw[:-16], raw[-16:]
        owner = payload[20:].decode(errors="replace")
        if not any(hmac.compare_digest(mac, _mac(k, payload)) for k in self.keys.of(owner)):
            return None
        (expires,) = struct.unpack(">I", payload[16:20])
        return str(uuid.UUID(bytes=payload[:16])) if expires >= time.time() else None


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _TICKET_CONTEXT + payload, hashlib.sha256).digest()[:16]


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


def _ticket_allows(scope: Scope, job_id: str) -> bool:
    path = scope["path"]
    if scope["type"] == "websocket":
        found = _TICKET_SOCKET.match(path)
        return path == "/ws" or (found is not None and found.group(1).lower() == job_id)
    found = _TICKET_READS.match(path)
    return scope["method"] == "GET" and found is not None and found.group(1).lower() == job_id


class Auth:
    """Pure-ASGI: puts a `Principal` in `scope["state"]`, or answers 401 (WebSocket: 4401)."""

    def __init__(
        self, app: ASGIApp, settings: Settings, db: asyncpg.Pool, local_only: bool = False
    ) -> None:
        self.app = app
        self.tokens = [(s.encode(), n) for s, n in settings.named_tokens.items()]
        self.admins = settings.admin_names
        self.tickets = Tickets(settings)
        self.sessions = Sessions(settings, db)
        self.db = db
        self.limit = settings.rate_limit
        self._blocked: dict[str, float] = {}  # client address → monotonic time it is let in
        self.cors = frozenset(settings.cors_origins)
        self.local_only = local_only and not self.tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown", 0))[0]
        if self._blocked.get(address, 0.0) > time.monotonic():
            principal, problem = None, "too many failed authentications from this address"
            retry = self._blocked[address] - time.monotonic()
        else:
            principal, problem = await self._principal(scope)
            retry = await self._failed(address) if principal is None else 0.0
        if principal is not None:
            scope.setdefault("state", {})["principal"] = principal
            await self.app(scope, receive, send)
            return
        if retry and scope["type"] == "http":
            headers = {"Retry-After": str(max(1, math.ceil(retry)))}
            await error_response(ErrorCode.RATE_LIMITED, problem, headers)(scope, receive, send)
            return
        if scope["type"] == "websocket":  # accept, then close with a code the client can read
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_UNAUTHORIZED, "reason": problem})
            return
        headers = {"WWW-Authenticate": 'Bearer realm="tori-ingest"'}
        await error_response(ErrorCode.UNAUTHORIZED, problem, headers)(scope, receive, send)

    async def _principal(self, scope: Scope) -> tuple[Principal | None, str]:
        if not self.tokens:
            return self._local(scope)
        path = scope["path"]
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES) or scope.get("method") == "OPTIONS":
            return ANONYMOUS, ""
        query = QueryParams(scope.get("query_string", b""))
        scheme, _, token = _header(scope, b"authorization").partition(" ")
        if scheme.lower() != "bearer":
            token = ""
        if not token and scope["type"] == "websocket":
            token = query.get("token", "")
        token = token.strip()
        if token:
            name = self._match(token.encode())
            if name is None:
                return None, "invalid bearer token"
            return Principal(name=name, admin=name in self.admins), ""
        ticket = query.get("ticket") or _header(scope, b"x-tori-ticket")
        if ticket:
            job_id = self.tickets.job_of(ticket)
            if job_id is None:
                return None, "invalid or expired ticket"
            if not _ticket_allows(scope, job_id):
                return None, "a ticket only reads its own job"
            return Principal(name=None, ticket_job=job_id), ""
        cookie = cookie_of(scope.get("headers", []))
        if cookie:
            return await self._session(scope, cookie)
        return None, "missing bearer token or ticket"

    async def _failed(self, address: str) -> float:
        """Count a failed authentication of `address` (with TORI_RATE_LIMIT on, across copies):
        past the limit it is refused, here without asking the database, until the window
        ends. Returns the seconds until then, 0 while under the limit."""
        if self.limit is None:
            return 0.0
        count, window = self.limit
        now = time.time()
        start = math.floor(now / window) * window
        if await counters.hit(self.db, f"auth-failures:{address}", start) <= count:
            return 0.0
        wait = start + window - now
        if len(self._blocked) > MAX_BLOCKED:
            self._blocked = {a: t for a, t in self._blocked.items() if t > time.monotonic()}
        self._blocked[address] = time.monotonic() + wait
        return wait

    def _match(self, token: bytes) -> str | None:
        return match_token(self.tokens, token)

    async def _session(self, scope: Scope, cookie: str) -> tuple[Principal | None, str]:
        """The dashboard's cookie (`http.session`): its token name, if used from the page."""
        name = await self.sessions.name_of(cookie)
        if name is None:
            return None, "the session has expired: log in again"
        if scope["type"] == "websocket":
            if not same_origin(_header(scope, b"origin"), _header(scope, b"host"), self.cors):
                return None, "a session's WebSocket must come from this origin"
        elif scope["method"] not in ("GET", "HEAD") and not _header(scope, CSRF_HEADER.encode()):
            return None, f"a session needs the {CSRF_HEADER} header on {scope['method']}"
        return Principal(name=name, admin=name in self.admins), ""

    def _local(self, scope: Scope) -> tuple[Principal | None, str]:
        if not self.local_only:
            return ANONYMOUS, ""
        raw_host = _header(scope, b"host")
        host = (urlsplit(f"//{raw_host}").hostname or "") if raw_host else ""
        origin = _header(scope, b"origin")
        if host and not is_loopback(host):
            return None, f"Host {host!r} is not local: set TORI_API_TOKENS to serve other hosts"
        if origin and origin not in self.cors and not is_loopback(urlsplit(origin).hostname or ""):
            return None, f"Origin {origin!r} is not local and not in TORI_CORS_ORIGINS"
        return ANONYMOUS, ""
