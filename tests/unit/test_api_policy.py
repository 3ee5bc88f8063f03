"""`check_url` without a network: strict parsing, one resolution through an injected resolver, exceptions."""

from __future__ import annotations

import pytest

from scf.connectors.web.policy import CheckedUrl, GuardPolicy, check_url, safe_url
from scf.schemas.errors import ErrorCategory, SecurityError, TransientError
from tests.support.http_servers import FakeDns

DNS = FakeDns(
    {
        "api.example.com": ["93.184.216.34", "2606:2800:220:1::1"],
        "internal.example.com": ["10.0.0.7"],
        "mixed.example.com": ["93.184.216.34", "127.0.0.1"],
        "scoped.example.com": ["fe80::1%eth0"],
        "empty.example.com": [],
    }
)


def policy(*allowed: str, allow_private: bool = False) -> GuardPolicy:
    return GuardPolicy.build(allowed, allow_private=allow_private, resolver=DNS)


async def test_a_public_host_is_approved_with_every_address_it_resolves_to() -> None:
    checked = await check_url("https://API.example.com/v1/items?x=1", policy())

    assert checked == CheckedUrl(checked.url, "api.example.com", 443, ("93.184.216.34", "2606:2800:220:1::1"))
    assert str(checked.url) == "https://api.example.com/v1/items?x=1"


async def test_a_public_ip_literal_is_not_resolved() -> None:
    DNS.asked.clear()
    checked = await check_url("http://93.184.216.34:8080/", policy())

    assert (checked.host, checked.port, checked.addresses) == ("93.184.216.34", 8080, ("93.184.216.34",))
    assert DNS.asked == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://api.example.com/", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("http://user@api.example.com/", "userinfo"),
        ("http://user:pw@api.example.com/", "userinfo"),
        ("http://api.example.com\\@127.0.0.1/", "backslash"),
        ("http://api.example.com /", "whitespace"),
        ("http:///path", "no host"),
        ("http://2130706433/", "non-canonical"),
        ("http://0177.0.0.1/", "does not parse"),
        ("http://internal.example.com/", "10.0.0.7 is private"),
        ("http://mixed.example.com/", "127.0.0.1 is loopback"),
        ("http://scoped.example.com/", "link-local"),
        ("http://[fe80::1%25eth0]/", "zone"),
        ("http://" + "a" * 9000 + ".com/", "longer than"),
    ],
)
async def test_odd_or_internal_urls_are_refused_with_the_reason_in_detail(url: str, reason: str) -> None:
    with pytest.raises(SecurityError) as caught:
        await check_url(url, policy())

    assert caught.value.category is ErrorCategory.SECURITY
    assert caught.value.to_info().message == "access denied"
    assert reason in (caught.value.detail or "")
    assert "pw" not in (caught.value.detail or "")


async def test_a_trusted_hostname_may_resolve_to_private_addresses() -> None:
    checked = await check_url("http://internal.example.com/", policy("internal.example.com"))

    assert checked.addresses == ("10.0.0.7",)


async def test_a_trusted_name_with_a_port_trusts_that_port_only() -> None:
    allowed = policy("internal.example.com:8080")

    assert (await check_url("http://internal.example.com:8080/", allowed)).port == 8080
    with pytest.raises(SecurityError):
        await check_url("http://internal.example.com:8081/", allowed)


async def test_allow_private_admits_rfc1918_but_not_loopback() -> None:
    assert (await check_url("http://internal.example.com/", policy(allow_private=True))).addresses
    with pytest.raises(SecurityError):
        await check_url("http://mixed.example.com/", policy(allow_private=True))


async def test_an_unresolvable_host_is_transient_not_a_refusal() -> None:
    with pytest.raises(TransientError):
        await check_url("http://nowhere.example.com/", policy())
    with pytest.raises(TransientError):
        await check_url("http://empty.example.com/", policy())


def test_safe_url_drops_userinfo_query_and_fragment() -> None:
    assert safe_url("https://u:secret@h.example:8443/p/a?key=secret#f") == "https://h.example:8443/p/a"
    assert safe_url("http://[::1]:8080/x") == "http://[::1]:8080/x"
    assert safe_url("http://0177.0.0.1/") == "<unparseable URL>"
