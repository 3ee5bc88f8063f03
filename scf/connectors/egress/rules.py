"""The egress rule grammar and the pure (no I/O) verdict on one endpoint's name and addresses.

An entry is a CIDR, an IP, or a hostname (`*.` wildcard allowed), each with an optional `:port`; an IPv6
address or network takes brackets when it has a port (`[::1]:5432`, `[fd00::/8]:5432`). Entries are
comma-separated. The built-in denials (link-local, cloud metadata, unspecified, multicast) hold whatever
the lists say, save that an allow entry for a network inside link-local admits that network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from scf.connectors.web.addresses import embedded_ipv4
from scf.schemas.configs.api import HostRule, IPAddress, IPNetwork, host_kind, parse_host_rule

#: At most this many entries per list (an operator's setting, but bounded all the same).
MAX_RULES = 1024
MAX_ENTRY_CHARS = 300

LINK_LOCAL: tuple[IPNetwork, ...] = (
    ipaddress.IPv4Network("169.254.0.0/16"),
    ipaddress.IPv6Network("fe80::/10"),
)
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.IPv4Address("169.254.169.254"),
        ipaddress.IPv6Address("fd00:ec2::254"),
        ipaddress.IPv4Address("100.100.100.200"),
    }
)
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata"})
#: "this network": 0.0.0.0 reaches the local host on Linux, and no other 0.x address is a real target.
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")


@dataclass(frozen=True)
class Endpoint:
    """One network place a connector connects to: a host name or IP literal and a TCP port."""

    host: str
    port: int

    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Pinned:
    """An endpoint the policy approved, with the addresses it approved (connect to these only)."""

    host: str
    port: int
    addresses: tuple[str, ...]


def parse_rule(text: str) -> HostRule:
    """One entry: `parse_host_rule`'s grammar, plus a port on a network (`10.0.0.0/8:5432`)."""
    entry = text.strip().lower()
    if len(entry) > MAX_ENTRY_CHARS:
        raise ValueError(f"an egress entry is longer than {MAX_ENTRY_CHARS} characters")
    if "/" not in entry:
        return parse_host_rule(entry)
    port: int | None = None
    if entry.startswith("["):
        network_text, _, rest = entry[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r} is not a network, network:port or [IPv6 network]:port")
            port = _port(rest[1:], text)
    else:
        prefix, _, tail = entry.partition("/")
        length, colon, port_text = tail.partition(":")
        if colon and ":" in prefix:
            raise ValueError(f"{text!r}: an IPv6 network with a port is written [network]:port")
        network_text = f"{prefix}/{length}"
        if colon:
            port = _port(port_text, text)
    try:
        network = ipaddress.ip_network(network_text, strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid network ({exc})") from None
    return HostRule(network=network, port=port)


def _port(value: str, text: str) -> int:
    if not value.isdigit() or len(value) > 5 or not 1 <= int(value) <= 65535:
        raise ValueError(f"{text!r}: the port must be 1-65535")
    return int(value)


def parse_rules(text: str) -> tuple[HostRule, ...]:
    """A comma-separated list; blank entries are skipped; ValueError names a bad entry."""
    entries = [e for e in text.split(",", MAX_RULES) if e.strip()]
    if len(entries) > MAX_RULES:
        raise ValueError(f"an egress list holds more than {MAX_RULES} entries")
    return tuple(parse_rule(entry) for entry in entries)


def normal_name(host: str) -> str:
    return host.strip().lower().rstrip(".")


def views(address: IPAddress) -> list[IPAddress]:
    """The address and every IPv4 address it embeds (IPv4-mapped, 6to4, Teredo, NAT64, compatible)."""
    found: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        elif not (address.is_unspecified or address.is_loopback):
            found.extend(embedded_ipv4(address))
    return found


def builtin_refusal(address: IPAddress, allow: Sequence[HostRule]) -> str | None:
    """Why the built-in rules refuse `address` (or an address it embeds), or None."""
    for view in views(address):
        if view in METADATA_ADDRESSES:
            return f"{address} is a cloud metadata address"
        if view.is_unspecified or (isinstance(view, ipaddress.IPv4Address) and view in _THIS_NETWORK):
            return f"{address} is unspecified"
        if view.is_multicast:
            return f"{address} is multicast"
        link_local = any(view in net for net in LINK_LOCAL if net.version == view.version)
        if link_local and not any(_admits_link_local(rule, view) for rule in allow):
            return f"{address} is link-local"
    return None


def _admits_link_local(rule: HostRule, address: IPAddress) -> bool:
    """An allow entry admits link-local only when it names a network inside link-local on purpose."""
    network = rule.network
    if network is None or address not in network:
        return False
    return any(network.version == ll.version and network.subnet_of(ll) for ll in LINK_LOCAL)  # type: ignore[arg-type]


def name_refusal(name: str, port: int, deny: Sequence[HostRule]) -> str | None:
    if name in METADATA_NAMES:
        return f"{name} is a cloud metadata name"
    if any(rule.matches_host(name, port) for rule in deny):
        return f"{name} is denied by SCF_EGRESS_DENY"
    return None


def verdict(
    host: str,
    port: int,
    addresses: Sequence[IPAddress],
    *,
    allow: Sequence[HostRule],
    deny: Sequence[HostRule],
) -> str | None:
    """Why connecting to `host:port` at `addresses` is refused, or None. Deny wins over allow."""
    kind = host_kind(host)  # ValueError for a host no resolver should be asked about
    name = kind if isinstance(kind, str) else None
    if name is not None:
        reason = name_refusal(name, port, deny)
        if reason is not None:
            return reason
    name_allowed = name is not None and any(rule.matches_host(name, port) for rule in allow)
    for address in addresses:
        reason = builtin_refusal(address, allow)
        if reason is not None:
            return reason
        if any(rule.matches_address(view, port) for view in views(address) for rule in deny):
            return f"{address} is denied by SCF_EGRESS_DENY"
        if allow and not name_allowed and not any(rule.matches_address(address, port) for rule in allow):
            return f"{address}:{port} is not in SCF_EGRESS_ALLOW"
    if allow and not addresses and not name_allowed:
        return f"{host}:{port} is not in SCF_EGRESS_ALLOW"
    return None
