"""Webhooks, the parts every process shares: which callback URLs and addresses are allowed (the
SSRF guard), the retry schedule, the signing secrets, and the shapes of the delivery log and
of the body a receiver gets.

The guard runs twice: on the URL as written at submit (no DNS: a submit never waits on a
resolver, and an answer could change before delivery anyway), then at each delivery on every
address the name resolves to, and the request goes to the address that was checked.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import random
import socket
from datetime import datetime
from urllib.parse import urlsplit

from pydantic import Field

from tori_ingest.core.models import JobView, Model
from tori_ingest.core.vocab import DeliveryState, EventType

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL = 2048
ALLOW_FLAG = "TORI_WEBHOOK_ALLOW_PRIVATE=1"
# Cloud instance-metadata endpoints: refused even with the allow flag (no receiver lives there,
# and an instance's credentials do). 168.63.129.16 (Azure) is a public address.
# 169.254.170.23 and fd00:ec2::23: the EKS Pod Identity agent, which hands out credentials.
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "100.100.100.200",
        "168.63.129.16",
    )
)
# IPv6 blocks that carry an IPv4 address in their last 32 bits. IPv4-mapped (::ffff:0:0/96),
# 6to4 and Teredo are read with ipaddress's own properties instead.
LAST32_IPV4_BLOCKS = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "64:ff9b::/96",  # NAT64, well-known prefix (RFC 6052)
        "64:ff9b:1::/48",  # NAT64, local use (RFC 8215)
        "::ffff:0:0:0/96",  # IPv4-translated, SIIT (RFC 2765)
        "::/96",  # IPv4-compatible, deprecated (RFC 4291); not :: and ::1 themselves
    )
)
NOT_IPV4_COMPATIBLE = frozenset({ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1")})

# Retries: exponential from RETRY_BASE_S, capped at RETRY_CAP_S, ±RETRY_JITTER, for
# RETRY_WINDOW_S after the terminal state (about 30 tries in a day). A receiver that is down
# for an hour gets its events about an hour later. TORI_TEST_HOOKS: the same in fractions of
# a second.
RETRY_BASE_S = 10.0
RETRY_CAP_S = 3600.0
RETRY_WINDOW_S = 24 * 3600.0
RETRY_JITTER = 0.2
FAST_BASE_S = 0.2
FAST_CAP_S = 2.0

SECRET_PREFIX = "whsec_"
SECRET_BYTES = (24, 64)  # what the Standard Webhooks spec asks of a secret


class CallbackRefused(ValueError):
    """A callback URL or address that must not be called; the message says why."""


def embedded_ipv4(ip: IPAddress) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address carries (IPv4-mapped, -compatible, -translated,
    NAT64, 6to4, Teredo server and client), or () for any other address. A translator or
    tunnel delivers such an address to the IPv4 one, so that is the one to judge."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return ()
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo
    if ip not in NOT_IPV4_COMPATIBLE and any(ip in block for block in LAST32_IPV4_BLOCKS):
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    return ()


def address_refusal(ip: IPAddress, *, allow_private: bool) -> str | None:
    """Why `ip` must not be called, or None when it may be. An IPv6 address carrying an IPv4
    one is judged by that address; Teredo's also by its own (2001::/32 is not global, and
    stays refused without the flag)."""
    inner = embedded_ipv4(ip)
    teredo = isinstance(ip, ipaddress.IPv6Address) and ip.teredo is not None
    for candidate in (*inner, ip) if teredo or not inner else inner:
        kind = _refused_kind(candidate, allow_private=allow_private)
        if kind:
            where = "" if candidate == ip else f" (inside {ip})"
            return f"{candidate}{where} is {kind}"
    return None


def _refused_kind(ip: IPAddress, *, allow_private: bool) -> str | None:
    """What kind of refused address `ip` is itself, or None when it may be called."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_global or allow_private:
        return None
    if ip.is_loopback or ip.is_unspecified:
        kind = "loopback"
    elif ip.is_link_local:
        kind = "link-local"
    else:
        kind = "private"
    return f"a {kind} address (set {ALLOW_FLAG} to allow)"


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without DNS: an IP literal, or the legacy IPv4 forms that
    resolvers accept ("127.1", "2130706433")."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_url(url: str, *, allow_private: bool) -> str:
    """`url` if it may be a callback (http/https, a host, no credentials, not a refused
    address by what it says itself); raises CallbackRefused otherwise. No DNS here."""
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise CallbackRefused(f"callback_url must be a URL of at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise CallbackRefused("callback_url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallbackRefused("callback_url must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("callback_url must not carry credentials (user:password@)")
    host = parts.hostname.rstrip(".")
    if host in METADATA_HOSTS:
        raise CallbackRefused(f"callback_url: {host} is a cloud metadata host")
    if host == "localhost" or host.endswith(".localhost"):  # loopback by definition (RFC 6761)
        host = "127.0.0.1"
    ip = literal_address(host)
    problem = address_refusal(ip, allow_private=allow_private) if ip is not None else None
    if problem:
        raise CallbackRefused(f"callback_url refused: {problem}")
    return url


def retry_delay(failures: int, *, fast: bool = False) -> float:
    """Seconds until the next try after `failures` failed ones (≥ 1)."""
    base, cap = (FAST_BASE_S, FAST_CAP_S) if fast else (RETRY_BASE_S, RETRY_CAP_S)
    wait = min(base * 2.0 ** (max(failures, 1) - 1), cap)
    return wait * (1 + RETRY_JITTER * (2 * random.random() - 1))


def parse_secrets(raw: str) -> list[bytes]:
    """The signing keys of TORI_WEBHOOK_SECRET: one `whsec_<base64>`, or several separated by
    spaces while rotating (each is signed with, the receiver accepts any). Raises ValueError
    without echoing the secret."""
    keys = []
    for item in raw.split():
        if not item.startswith(SECRET_PREFIX):
            raise ValueError(f"TORI_WEBHOOK_SECRET must start with {SECRET_PREFIX}")
        try:
            body = item[len(SECRET_PREFIX) :]
            key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("TORI_WEBHOOK_SECRET is not valid base64 after whsec_") from None
        if not SECRET_BYTES[0] <= len(key) <= SECRET_BYTES[1]:
            raise ValueError(
                f"TORI_WEBHOOK_SECRET must hold {SECRET_BYTES[0]}-{SECRET_BYTES[1]} bytes"
            )
        keys.append(key)
    if not keys:
        raise ValueError("TORI_WEBHOOK_SECRET is empty")
    return keys


def webhook_id(delivery_id: object) -> str:
    """The `webhook-id` of a delivery: the same on every try, so receivers can deduplicate."""
    return f"msg_{str(delivery_id).replace('-', '')}"


# --- shapes ----------------------------------------------------------------------------------


class WebhookEvent(Model):
    """The body POSTed to a callback URL, byte for byte the same on every try."""

    type: EventType
    timestamp: datetime = Field(description="when the job reached its terminal state")
    data: JobView


class DeliveryAttempt(Model):
    n: int
    at: datetime
    duration_ms: float | None
    status_code: int | None = Field(description="the receiver's answer; null: none (error)")
    error: str | None
    response_excerpt: str | None = Field(description="the first bytes of the answer's body")


class Delivery(Model):
    """One event for one job, and every try to deliver it."""

    webhook_id: str
    type: EventType
    url: str = Field(description="the callback URL (secret query values masked)")
    state: DeliveryState
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None = Field(description="the next try; null unless pending")
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    log: list[DeliveryAttempt]


class DeliveryList(Model):
    """GET /jobs/{id}/deliveries, oldest first."""

    job_id: str
    deliveries: list[Delivery]
