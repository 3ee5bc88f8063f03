"""The deployment's egress policy: which hosts and ports any connector may connect to.

Built from `SCF_EGRESS_ALLOW` / `SCF_EGRESS_DENY` (see rules.py for the grammar and the built-in
denials). `check` resolves every endpoint's name once (bounded by a timeout) and judges the name and
every address it resolves to; it returns the approved addresses so a driver can connect to those only.
A process installs its policy once (`install`); connectors re-check at open (`ServiceConnector.open`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from scf.connectors.egress.rules import Endpoint, Pinned, name_refusal, parse_rules, verdict
from scf.connectors.web.policy import use_deployment_egress
from scf.schemas.configs.api import HostRule, IPAddress, host_kind
from scf.schemas.errors import ErrorCode, SecurityError, TransientError

log = structlog.get_logger(__name__)

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
DENIED_MESSAGE = "the connector's endpoint is not allowed by the egress policy"
MAX_ENDPOINTS = 64
MAX_ANSWERS = 64


class EgressSettings(Protocol):
    scf_egress_allow: str
    scf_egress_deny: str


async def system_resolver(host: str, port: int) -> list[str]:
    """The event loop's getaddrinfo: the resolver the drivers themselves would use."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def denied(endpoint: Endpoint | str, reason: str) -> SecurityError:
    where = endpoint.label() if isinstance(endpoint, Endpoint) else endpoint
    log.warning("egress_denied", endpoint=where[:300], reason=reason[:500])
    return SecurityError(DENIED_MESSAGE, code=ErrorCode.EGRESS_DENIED, detail=f"{where[:300]}: {reason}")


@dataclass(frozen=True)
class EgressPolicy:
    """Deny wins; an empty allow list allows whatever is not denied; built-in denials always hold."""

    allow: tuple[HostRule, ...] = ()
    deny: tuple[HostRule, ...] = ()
    resolve_timeout: float = 5.0

    @classmethod
    def from_settings(cls, settings: EgressSettings) -> EgressPolicy:
        """ValueError names a bad entry (a deployment that cannot say its policy must not start)."""
        return cls(allow=parse_rules(settings.scf_egress_allow), deny=parse_rules(settings.scf_egress_deny))

    @classmethod
    def build(cls, allow: str = "", deny: str = "", *, resolve_timeout: float = 5.0) -> EgressPolicy:
        return cls(allow=parse_rules(allow), deny=parse_rules(deny), resolve_timeout=resolve_timeout)

    def refusal(self, host: str, port: int, addresses: Sequence[IPAddress]) -> str | None:
        """Why `host:port` at these (already resolved) addresses is refused, or None: no I/O."""
        try:
            return verdict(host, port, addresses, allow=self.allow, deny=self.deny)
        except ValueError as exc:
            return str(exc)

    def judge(self, host: str, port: int, addresses: Sequence[IPAddress]) -> None:
        """`refusal` as an EGRESS_DENIED `SecurityError`."""
        reason = self.refusal(host, port, addresses)
        if reason is not None:
            raise denied(Endpoint(host, port), reason)

    async def check(
        self,
        endpoints: Sequence[Endpoint],
        *,
        resolver: Resolver = system_resolver,
        require_resolution: bool = True,
    ) -> list[Pinned]:
        """Approve every endpoint or raise EGRESS_DENIED (`security`).

        A name that cannot be resolved is a `transient` CONNECTION_FAILED, or, with
        `require_resolution=False` (a create, where the connect-time check follows), judged by name only.
        """
        if len(endpoints) > MAX_ENDPOINTS:
            raise denied("<endpoints>", f"more than {MAX_ENDPOINTS} endpoints")
        unique = list(dict.fromkeys(endpoints))
        kinds = [self._kind(endpoint) for endpoint in unique]  # denied names are never resolved
        # names resolve at once: the whole check takes one resolve_timeout, not one per endpoint
        pairs = zip(unique, kinds, strict=True)
        lookups = (self._addresses(endpoint, kind, resolver, require_resolution) for endpoint, kind in pairs)
        found = await asyncio.gather(*lookups, return_exceptions=True)
        pinned: list[Pinned] = []
        for endpoint, addresses in zip(unique, found, strict=True):
            if isinstance(addresses, BaseException):
                raise addresses
            if addresses or require_resolution:
                self.judge(endpoint.host, endpoint.port, addresses)
            pinned.append(Pinned(endpoint.host, endpoint.port, tuple(str(a) for a in addresses)))
        return pinned

    def _kind(self, endpoint: Endpoint) -> IPAddress | str:
        """The endpoint's IP or name, refusing a malformed host and a denied name before any lookup."""
        try:
            kind = host_kind(endpoint.host)
        except ValueError as exc:
            raise denied(endpoint, str(exc)) from None
        if isinstance(kind, str):
            reason = name_refusal(kind, endpoint.port, self.deny)
            if reason is not None:
                raise denied(endpoint, reason)
        return kind

    async def _addresses(
        self, endpoint: Endpoint, kind: IPAddress | str, resolver: Resolver, required: bool
    ) -> list[IPAddress]:
        if isinstance(kind, str):
            return await self._resolve(endpoint, resolver, required)
        return [kind]

    async def _resolve(self, endpoint: Endpoint, resolver: Resolver, required: bool) -> list[IPAddress]:
        try:
            async with asyncio.timeout(self.resolve_timeout):
                answers = await resolver(endpoint.host, endpoint.port)
        except (TimeoutError, OSError) as exc:
            if not required:
                return []
            raise TransientError(
                "cannot resolve the connector's host",
                code=ErrorCode.CONNECTION_FAILED,
                detail=f"{endpoint.label()}: {type(exc).__name__}",
            ) from None
        if not answers:
            if not required:
                return []
            raise TransientError("the connector's host has no address", code=ErrorCode.CONNECTION_FAILED)
        addresses: list[IPAddress] = []
        for answer in list(answers)[:MAX_ANSWERS]:
            try:
                addresses.append(ipaddress.ip_address(answer))
            except ValueError:  # a scoped address (fe80::1%eth0) or garbage from a custom resolver
                raise denied(endpoint, f"resolves to {str(answer)[:80]!r}, not a plain IP address") from None
        return addresses


_installed: list[EgressPolicy] = []


def install(policy: EgressPolicy | None) -> None:
    """Make `policy` this process's deployment policy (None: check nothing, as in unit tests): every
    `ServiceConnector.open` and every URL the SSRF guard checks (after a connector's own allowed_hosts)."""
    _installed[:] = [] if policy is None else [policy]
    use_deployment_egress(policy)


def installed() -> EgressPolicy | None:
    return _installed[0] if _installed else None
