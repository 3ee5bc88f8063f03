"""Address classification of the SSRF guard: only public addresses pass without an explicit exception."""

from __future__ import annotations

import ipaddress

import pytest

from scf.connectors.web.addresses import AddressClass, address_refusal, classify_address
from scf.schemas.configs.api import parse_host_rule


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", AddressClass.PUBLIC),
        ("2606:4700:4700::1111", AddressClass.PUBLIC),
        ("127.0.0.1", AddressClass.LOOPBACK),
        ("127.255.0.9", AddressClass.LOOPBACK),
        ("::1", AddressClass.LOOPBACK),
        ("0.0.0.0", AddressClass.UNSPECIFIED),
        ("::", AddressClass.UNSPECIFIED),
        ("10.1.2.3", AddressClass.PRIVATE),
        ("172.16.0.1", AddressClass.PRIVATE),
        ("192.168.1.1", AddressClass.PRIVATE),
        ("fd12:3456::1", AddressClass.PRIVATE),
        ("fec0::1", AddressClass.PRIVATE),
        ("100.64.0.1", AddressClass.SHARED),
        ("169.254.169.254", AddressClass.LINK_LOCAL),
        ("fe80::1", AddressClass.LINK_LOCAL),
        ("224.0.0.1", AddressClass.MULTICAST),
        ("ff02::1", AddressClass.MULTICAST),
        ("240.0.0.1", AddressClass.RESERVED),
        ("255.255.255.255", AddressClass.RESERVED),
        ("192.0.2.1", AddressClass.SPECIAL),
        ("198.18.0.1", AddressClass.SPECIAL),
        ("0.1.2.3", AddressClass.SPECIAL),
        # IPv6 forms that carry an IPv4 address: judged by what they carry
        ("::ffff:127.0.0.1", AddressClass.LOOPBACK),
        ("::ffff:169.254.169.254", AddressClass.LINK_LOCAL),
        ("::ffff:10.0.0.1", AddressClass.PRIVATE),
        ("::127.0.0.1", AddressClass.LOOPBACK),
        ("2002:7f00:1::", AddressClass.LOOPBACK),
        ("2002:a9fe:a9fe::1", AddressClass.LINK_LOCAL),
        ("64:ff9b::7f00:1", AddressClass.LOOPBACK),
        ("64:ff9b::a00:1", AddressClass.PRIVATE),
    ],
)
def test_addresses_are_classified(address: str, kind: AddressClass) -> None:
    assert classify_address(ipaddress.ip_address(address)) is kind


def test_teredo_addresses_are_judged_by_the_client_they_carry() -> None:
    # Teredo client 127.0.0.1 (stored inverted), server 65.54.227.120
    teredo = ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:80ff:fffe")

    assert teredo.teredo is not None and str(teredo.teredo[1]) == "127.0.0.1"
    assert classify_address(teredo) is not AddressClass.PUBLIC


def refusal(address: str, port: int = 80, **kwargs: object) -> str | None:
    options: dict[str, object] = {"host_trusted": False, "allow_private": False, "rules": ()}
    options.update(kwargs)
    return address_refusal(ipaddress.ip_address(address), port, **options)  # type: ignore[arg-type]


def test_public_addresses_pass_and_special_ones_name_the_reason() -> None:
    assert refusal("8.8.8.8") is None
    assert refusal("127.0.0.1") == "127.0.0.1 is loopback"
    assert refusal("169.254.169.254") == "169.254.169.254 is link-local"


def test_allow_private_admits_private_and_cgnat_but_not_loopback_or_metadata() -> None:
    assert refusal("10.0.0.1", allow_private=True) is None
    assert refusal("100.64.1.1", allow_private=True) is None
    assert refusal("127.0.0.1", allow_private=True) is not None
    assert refusal("169.254.169.254", allow_private=True) is not None


def test_explicit_rules_admit_their_network_and_port_only() -> None:
    rules = (parse_host_rule("127.0.0.1:8080"), parse_host_rule("10.9.0.0/16"))

    assert refusal("127.0.0.1", 8080, rules=rules) is None
    assert refusal("127.0.0.1", 8081, rules=rules) is not None
    assert refusal("10.9.3.4", 443, rules=rules) is None
    assert refusal("10.8.3.4", 443, rules=rules) is not None


def test_nothing_admits_unspecified_or_multicast() -> None:
    rules = (parse_host_rule("0.0.0.0/0"),)

    assert refusal("0.0.0.0", host_trusted=True, rules=rules) is not None
    assert refusal("224.0.0.1", host_trusted=True, allow_private=True, rules=rules) is not None
    assert refusal("127.0.0.1", host_trusted=True) is None
