"""The webhook SSRF guard and IPv6 addresses that carry an IPv4 one (NAT64, 6to4, IPv4-mapped,
-compatible, -translated, Teredo): a translator or tunnel delivers those to the IPv4 address,
so they are refused exactly as that address is. Also the EKS Pod Identity agent, a metadata
address refused even with the allow flag. Literal addresses only: no DNS, no network.
"""

from __future__ import annotations

import ipaddress

import pytest

from tori_ingest.core import webhooks as policy


def ip(address: str) -> policy.IPAddress:
    return ipaddress.ip_address(address)


# Teredo: 2001:0:<server>:<flags>:<port ^ ffff>:<client ^ ffffffff>; server 65.54.227.120.
TEREDO_PRIVATE_CLIENT = "2001:0:4136:e378:8000:63bf:f5ff:fffe"  # client 10.0.0.1
TEREDO_METADATA_CLIENT = "2001:0:4136:e378:8000:63bf:5601:5601"  # client 169.254.169.254
TEREDO_PRIVATE_SERVER = "2001:0:a00:1:8000:63bf:f7f7:f7f7"  # server 10.0.0.1, client 8.8.8.8

WRAPPED = [
    ("64:ff9b::127.0.0.1", "127.0.0.1"),  # NAT64, well-known prefix
    ("64:ff9b::10.0.0.1", "10.0.0.1"),
    ("64:ff9b::169.254.169.254", "169.254.169.254"),
    ("64:ff9b::169.254.170.23", "169.254.170.23"),
    ("64:ff9b:1::10.0.0.1", "10.0.0.1"),  # NAT64, local-use prefix
    ("2002:c0a8:101::1", "192.168.1.1"),  # 6to4
    ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped
    ("::ffff:169.254.170.23", "169.254.170.23"),
    ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible
    ("::ffff:0:10.0.0.1", "10.0.0.1"),  # IPv4-translated (SIIT)
    (TEREDO_PRIVATE_CLIENT, "10.0.0.1"),
    (TEREDO_METADATA_CLIENT, "169.254.169.254"),
    (TEREDO_PRIVATE_SERVER, "10.0.0.1"),
]


@pytest.mark.parametrize(("address", "inner"), WRAPPED)
def test_an_embedded_ipv4_is_refused_like_the_plain_one(address: str, inner: str) -> None:
    for allow_private in (False, True):
        plain = policy.address_refusal(ip(inner), allow_private=allow_private)
        wrapped = policy.address_refusal(ip(address), allow_private=allow_private)
        assert bool(wrapped) is bool(plain), (address, allow_private, wrapped)
        if plain:  # the same reason, naming both the address given and the one inside it
            assert wrapped == f"{inner} (inside {ip(address)}){plain.removeprefix(inner)}"
    assert policy.address_refusal(ip(address), allow_private=False)  # all of these are internal


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("64:ff9b::7f00:1", ("127.0.0.1",)),
        ("64:ff9b:1::a00:1", ("10.0.0.1",)),
        ("2002:c0a8:101::1", ("192.168.1.1",)),
        ("::ffff:7f00:1", ("127.0.0.1",)),
        ("::7f00:1", ("127.0.0.1",)),
        ("::ffff:0:a00:1", ("10.0.0.1",)),
        (TEREDO_PRIVATE_CLIENT, ("65.54.227.120", "10.0.0.1")),
        ("::", ()),  # the unspecified and loopback addresses, not IPv4-compatible ones
        ("::1", ()),
        ("2606:4700::1111", ()),
        ("fd00:ec2::23", ()),
        ("10.0.0.1", ()),
    ],
)
def test_embedded_ipv4_unwraps_each_form(address: str, inner: tuple[str, ...]) -> None:
    assert policy.embedded_ipv4(ip(address)) == tuple(map(ipaddress.IPv4Address, inner))


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("169.254.170.23", "http://169.254.170.23/v1/credentials"),
        ("fd00:ec2::23", "http://[fd00:ec2::23]/v1/credentials"),
    ],
)
def test_eks_pod_identity_agent_is_refused_even_with_the_flag(address: str, url: str) -> None:
    for allow_private in (False, True):
        reason = policy.address_refusal(ip(address), allow_private=allow_private)
        assert reason == f"{address} is a cloud metadata address"
        with pytest.raises(policy.CallbackRefused, match="metadata"):
            policy.check_url(url, allow_private=allow_private)


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "64:ff9b:1::808:808",
        "2002:808:808::1",  # 6to4 of 8.8.8.8
        "::ffff:8.8.8.8",
        "93.184.215.14",
        "2606:4700::1111",
    ],
)
def test_public_addresses_stay_allowed(address: str) -> None:
    assert policy.address_refusal(ip(address), allow_private=False) is None
    assert policy.address_refusal(ip(address), allow_private=True) is None


def test_teredo_stays_refused_without_the_flag_even_between_public_addresses() -> None:
    # 2001::/32 is not a global block; unwrapping must not loosen that.
    address = ip("2001:0:4136:e378:8000:63bf:f7f7:f7f7")  # server 65.54.227.120, client 8.8.8.8
    assert policy.address_refusal(address, allow_private=False)
    assert policy.address_refusal(address, allow_private=True) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://[64:ff9b::7f00:1]:8080/h",
        "http://[2002:c0a8:101::1]/h",
        "http://[::127.0.0.1]/h",
        "http://[::ffff:0:10.0.0.1]/h",
        f"http://[{TEREDO_PRIVATE_CLIENT}]/h",
    ],
)
def test_submit_refuses_wrapped_internal_literals(url: str) -> None:
    with pytest.raises(policy.CallbackRefused, match=r"\(inside "):
        policy.check_url(url, allow_private=False)
