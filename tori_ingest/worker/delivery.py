"""One webhook try on the wire: resolve, refuse what the SSRF guard refuses, sign, POST.

The host is resolved here and every address it resolves to is checked; the request then goes
to the checked address (the URL's host still in `Host` and in TLS SNI/certificate checks), so
a name cannot resolve to a public address for the check and a private one for the connection.
No redirects are followed, no proxy from the environment is used, the whole try has one
deadline, and at most a short excerpt of the answer's body is read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from math import floor

import httpx
from standardwebhooks import Webhook

from tori_ingest import __version__
from tori_ingest.core.settings import Settings
from tori_ingest.core.webhooks import (
    CallbackRefused,
    address_refusal,
    check_url,
    literal_address,
)

ATTEMPT_TIMEOUT_S = 10.0  # the whole try: DNS, connect, send, the answer's first bytes
CONNECT_TIMEOUT_S = 5.0
EXCERPT_BYTES = 1024  # read at most this much of an answer
EXCERPT_CHARS = 200  # and keep this much


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None = None
    excerpt: str | None = None
    refused: bool = False  # the SSRF guard said no: trying again would not help

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signed_headers(keys: list[bytes], msg_id: str, body: str, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers; one `v1,` signature per key (several while rotating)."""
    signatures = " ".join(
        Webhook(key).sign(msg_id=msg_id, timestamp=now, data=body) for key in keys
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(floor(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }


class Sender:
    """Sends tries over one connection pool per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(ATTEMPT_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                follow_redirects=False,
                trust_env=False,  # a proxy would connect to addresses we never checked
                headers={"user-agent": f"tori-ingest/{__version__} (webhooks)"},
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, url: str, msg_id: str, body: str) -> Outcome:
        """One try; every failure is an Outcome (nothing raises but cancellation)."""
        keys = self.settings.webhook_keys
        if not keys:
            return Outcome(None, "TORI_WEBHOOK_SECRET is not set on this worker")
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
                target, extensions = await self.pin(url)
                headers = signed_headers(keys, msg_id, body, datetime.now(UTC))
                headers["host"] = httpx.URL(url).netloc.decode("ascii")
                async with self.client.stream(
                    "POST", target, content=body.encode(), headers=headers, extensions=extensions
                ) as answer:
                    excerpt = await _excerpt(answer)
                    error = (
                        None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"
                    )
                    return Outcome(answer.status_code, error, excerpt)
        except CallbackRefused as exc:
            return Outcome(None, f"refused: {exc}", refused=True)
        except TimeoutError:
            return Outcome(None, f"no answer within {ATTEMPT_TIMEOUT_S:g} s")
        except socket.gaierror as exc:
            return Outcome(None, f"cannot resolve the host: {exc.strerror or exc}")
        except (httpx.HTTPError, OSError) as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)

    async def pin(self, url: str) -> tuple[httpx.URL, dict[str, object]]:
        """The URL with its host replaced by a resolved, allowed address; raises
        CallbackRefused if any address it resolves to is refused."""
        allow = self.settings.tori_webhook_allow_private
        check_url(url, allow_private=allow)  # this copy's own settings, on the URL as written
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii").strip("[]")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        literal = literal_address(host)
        if literal is not None:  # nothing to resolve
            addresses = [str(literal)]
        else:
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "no address")
        for address in addresses:
            problem = address_refusal(ipaddress.ip_address(address), allow_private=allow)
            if problem:
                raise CallbackRefused(f"{host} resolves to {problem}")
        extensions: dict[str, object] = {}
        if parsed.scheme == "https":
            extensions["sni_hostname"] = host  # certificate checked against the name
        return parsed.copy_with(host=addresses[0]), extensions


async def _excerpt(answer: httpx.Response) -> str | None:
    """The first characters of the answer's body (the rest is never read)."""
    data = b""
    async for chunk in answer.aiter_bytes():
        data += chunk
        if len(data) >= EXCERPT_BYTES:
            break
    text = data[:EXCERPT_BYTES].decode("utf-8", "replace").replace("\x00", "")
    return text[:EXCERPT_CHARS] or None


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
