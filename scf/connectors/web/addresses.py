"""Pure address classification for the SSRF guard: which IPs are public, and which exception admits one.

An address is public only if nothing marks it special (loopback, private, link-local, CGNAT, multicast,
reserved, unspecified, documentation, ...) and no IPv4 address it embeds (IPv4-mapped, -compatible,
6to4, Teredo, NAT64) is special either. Exceptions never admit unspecified or multicast addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from enum import StrEnum

from scf.schemas.configs.api import HostRule, IPAddress

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_RFC1918 = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
)
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class AddressClass(StrEnum):
    PUBLIC = "public"
    UNSPECIFIED = "unspecified"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    MULTICAST = "multicast"
    PRIVATE = "private"
    SHARED = "shared address space (CGNAT)"
    RESERVED = "reserved"
    SPECIAL = "special-purpose"


#: Never reachable, whatever the exceptions say: 0.0.0.0 reaches the local host on Linux.
NEVER_ALLOWED = frozenset({AddressClass.UNSPECIFIED, AddressClass.MULTICAST})
#: What `allow_private` admits. Loopback and link-local (cloud metadata) need an explicit entry.
PRIVATE_CLASSES = frozenset({AddressClass.PRIVATE, AddressClass.SHARED})


def classify_address(address: IPAddress) -> AddressClass:
    """The most telling class of `address`, looking through every IPv4 address an IPv6 one embeds."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return classify_address(address.ipv4_mapped)
        own = _classify_one(address)
        if own in (AddressClass.UNSPECIFIED, AddressClass.LOOPBACK):  # :: and ::1 sit in ::/96 too
            return own
        for embedded in embedded_ipv4(address):
            inner = classify_address(embedded)
            if inner is not AddressClass.PUBLIC:
                return inner
        return own
    return _classify_one(address)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses a packet to `address` may end up at (6to4, Teredo, NAT64, IPv4-compatible)."""
    found: list[ipaddress.IPv4Address] = []
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in net for net in (*_NAT64, _IPV4_COMPATIBLE)) and int(address) & 0xFFFFFFFF:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _classify_one(address: IPAddress) -> AddressClass:
    if address.is_unspecified:
        return AddressClass.UNSPECIFIED
    if address.is_loopback:
        return AddressClass.LOOPBACK
    if address.is_link_local:
        return AddressClass.LINK_LOCAL
    if address.is_multicast:
        return AddressClass.MULTICAST
    if isinstance(address, ipaddress.IPv4Address):
        if address in _CGNAT:
            return AddressClass.SHARED
        if any(address in net for net in _RFC1918):
            return AddressClass.PRIVATE
    elif address in _UNIQUE_LOCAL or address.is_site_local:
        return AddressClass.PRIVATE
    if address.is_reserved:
        return AddressClass.RESERVED
    if address.is_private or not address.is_global:
        return AddressClass.SPECIAL
    return AddressClass.PUBLIC


def address_refusal(
    address: IPAddress,
    port: int,
    *,
    host_trusted: bool,
    allow_private: bool,
    rules: Sequence[HostRule],
) -> str | None:
    """Why connecting to `address:port` is refused, or None when it is public or an exception admits it."""
    kind = classify_address(address)
    if kind is AddressClass.PUBLIC:
        return None
    if kind in NEVER_ALLOWED:
        return f"{address} is {kind.value}"
    if host_trusted or (allow_private and kind in PRIVATE_CLASSES):
        return None
    if any(rule.matches_address(address, port) for rule in rules):
        return None
    return f"{address} is {kind.value}"
