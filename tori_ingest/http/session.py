"""Browser sessions for the dashboard, and the per-token keys that bind sessions and tickets.

`POST /ui/login` takes an API token in its body and answers with an HttpOnly, SameSite=Strict
cookie holding a random session id (`sql/012_sessions.sql`), never the token. The cookie then
stands for that token name on every route the page uses; requests other than GET also need the
`X-Tori-UI` header (a cross-site form cannot send it), and a WebSocket must come from this
origin. Sessions live in Postgres, so every copy accepts them and logout ends them everywhere;
each remembers a fingerprint of the token it was opened with, so rotating that token's secret
or removing its name ends its sessions, whatever TORI_SECRET_KEY is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

import asyncpg

from tori_ingest.core.settings import Settings
from tori_ingest.store import sessions as stored

COOKIE = "tori_session"
CSRF_HEADER = "x-tori-ui"
TTL_S = 12 * 3600


def secret_key(settings: Settings) -> bytes:
    """The base key of tickets and token keys: TORI_SECRET_KEY, else derived from the token
    secrets (the same on every copy, and it changes when they rotate)."""
    if settings.tori_secret_key is not None:
        return settings.tori_secret_key.get_secret_value().encode()
    return hashlib.sha256(b"\x00".join(sorted(s.encode() for s in settings.named_tokens))).digest()


def match_token(tokens: list[tuple[bytes, str]], token: bytes) -> str | None:
    """The name of `token` among (secret, name) pairs: every one compared, in constant time.
    An empty token never matches (settings refuse empty secrets too)."""
    found = None
    for secret, name in tokens:
        if hmac.compare_digest(token, secret) and token:
            found = name
    return found


class TokenKeys:
    """A key per current token secret, HMAC(base key, secret), listed by token name: what a
    ticket is signed with and a session is fingerprinted by, so both end with their token."""

    def __init__(self, settings: Settings) -> None:
        self._base = secret_key(settings)
        self._by_name: dict[str, list[bytes]] = {}
        for secret, name in settings.named_tokens.items():  # listed order: the first signs
            self._by_name.setdefault(name, []).append(self.key(secret.encode()))

    def key(self, secret: bytes) -> bytes:
        return hmac.new(self._base, b"tori-ingest token\x00" + secret, hashlib.sha256).digest()

    def of(self, name: str) -> list[bytes]:
        return self._by_name.get(name, [])

    @staticmethod
    def fingerprint(key: bytes) -> bytes:
        return hashlib.sha256(key).digest()[:16]


class Sessions:
    def __init__(self, settings: Settings, db: asyncpg.Pool) -> None:
        self.keys = TokenKeys(settings)
        self.db = db

    async def open(self, name: str, token: bytes) -> str:
        """A new session for the token `token` (already matched to `name`): its cookie value."""
        cookie = secrets.token_urlsafe(32)
        fp = TokenKeys.fingerprint(self.keys.key(token))
        await stored.open_session(self.db, _hash(cookie), name, fp, TTL_S)
        return cookie

    async def name_of(self, cookie: str) -> str | None:
        """The token name a live session stands for; None when unknown, ended, expired, or
        its token was rotated or removed."""
        found = await stored.find(self.db, _hash(cookie))
        if found is None:
            return None
        name, fp = found
        current = [TokenKeys.fingerprint(k) for k in self.keys.of(name)]
        return name if any(hmac.compare_digest(fp, c) for c in current) else None

    async def end(self, cookie: str) -> None:
        await stored.end(self.db, _hash(cookie))


def _hash(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode()).digest()


def cookie_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The session cookie of a request's raw headers, if any."""
    for key, value in headers:
        if key != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            name, _, found = part.strip().partition("=")
            if name == COOKIE and found:
                return found
    return None


def same_origin(origin: str, host: str, allowed: frozenset[str]) -> bool:
    """A WebSocket carrying a session cookie must come from this page's origin (browsers do
    not apply CORS to WebSockets), or from an origin in TORI_CORS_ORIGINS."""
    return bool(origin) and (origin in allowed or urlsplit(origin).netloc == host)
