"""Browser sessions for the dashboard: a signed cookie instead of a token in a URL.

`POST /ui/login` takes an API token in its body and answers with an HttpOnly, SameSite=Strict
cookie that names the token (`name`, expiry, HMAC), never the token itself. The cookie then
stands for that token name on every route the page uses; requests other than GET also need the
`X-Tori-UI` header (a cross-site form cannot send it), and a WebSocket must come from this
origin. Every copy with the same key accepts every copy's cookies; rotating the tokens (or
`TORI_SECRET_KEY`) ends every session, and a name no longer among the tokens is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from urllib.parse import urlsplit

from tori_ingest.core.settings import Settings

COOKIE = "tori_session"
CSRF_HEADER = "x-tori-ui"
TTL_S = 12 * 3600
_CONTEXT = b"tori-ingest session v1\x00"


def secret_key(settings: Settings) -> bytes:
    """The key of tickets and sessions: TORI_SECRET_KEY, else derived from the token secrets
    (the same on every copy, and it changes when they rotate)."""
    if settings.tori_secret_key is not None:
        return settings.tori_secret_key.get_secret_value().encode()
    return hashlib.sha256(b"\x00".join(sorted(s.encode() for s in settings.named_tokens))).digest()


def match_token(tokens: list[tuple[bytes, str]], token: bytes) -> str | None:
    """The name of `token` among (secret, name) pairs: every one compared, in constant time."""
    found = None
    for secret, name in tokens:
        if hmac.compare_digest(token, secret):
            found = name
    return found


class Sessions:
    def __init__(self, settings: Settings) -> None:
        self._key = secret_key(settings)
        self.names = frozenset(settings.named_tokens.values())

    def issue(self, name: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + TTL_S)
        payload = struct.pack(">I", expires) + name.encode()
        return _b64(payload) + "." + _b64(self._mac(payload))

    def name_of(self, cookie: str) -> str | None:
        """The token name a valid, unexpired session cookie stands for; None otherwise."""
        raw_payload, _, raw_mac = cookie.partition(".")
        try:
            payload, mac = _unb64(raw_payload), _unb64(raw_mac)
        except ValueError:
            return None
        if len(payload) < 5 or not hmac.compare_digest(mac, self._mac(payload)):
            return None
        (expires,) = struct.unpack(">I", payload[:4])
        name = payload[4:].decode(errors="replace")
        return name if expires >= time.time() and name in self.names else None

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, _CONTEXT + payload, hashlib.sha256).digest()[:16]


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc
