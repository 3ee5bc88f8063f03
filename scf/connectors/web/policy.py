"""The check half of the SSRF guard: parse a URL strictly, resolve its host once, refuse non-public targets.

`check_url` returns the addresses it approved; the transport connects only to those (see guard.py), so
a resolver that answers differently a second time (DNS rebinding) is never asked a second time.
Refusals are `SecurityError`s with a generic message; the reason goes to `detail` and the security log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
import structlog

from scf.connectors.web.addresses import address_refusal
from scf.schemas.configs.api import HostRule, IPAddress, host_kind, parse_host_rule
from scf.schemas.errors import ErrorCode, SecurityError, TransientError

log = structlog.get_logger(__name__)

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 8192
# Characters on which URL parsers disagree (a backslash is a slash to browsers, not to httpx).
_AMBIGUOUS_CHARS = frozenset("\\\t\r\n\0 ")
REFUSED_MESSAGE = "the URL is not allowed (SSRF guard)"


class DeploymentEgress(Protocol):
    """The deployment's egress policy as the guard sees it (scf.connectors.egress.EgressPolicy)."""

    def judge(self, host: str, port: int, addresses: Sequence[IPAddress]) -> None:
        """Raise a `security` EGRESS_DENIED error when the deployment refuses `host:port` there."""


#: The process's deployment policy; `scf.connectors.egress.install` sets it (empty: none).
_DEPLOYMENT: list[DeploymentEgress] = []


def use_deployment_egress(policy: DeploymentEgress | None) -> None:
    _DEPLOYMENT[:] = [] if policy is None else [policy]


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve through the event loop's getaddrinfo (the same resolver the OS would use to connect)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class GuardPolicy:
    """What the guard admits beyond public addresses, and how it resolves names.

    `allowed_hosts` entries trust a hostname (any address it resolves to, save unspecified and
    multicast) or an IP network; `allow_private` admits RFC 1918, unique-local and CGNAT addresses but
    never loopback or link-local (cloud metadata): those need an explicit entry.
    Both only narrow the deployment's egress policy (`egress`, else the process's installed one): what
    it refuses stays refused (EGRESS_DENIED) whatever `allowed_hosts` lists.
    """

    allowed_hosts: tuple[HostRule, ...] = ()
    allow_private: bool = False
    resolver: Resolver = system_resolver
    resolve_timeout: float = 10.0
    max_redirects: int = 5
    egress: DeploymentEgress | None = None

    @classmethod
    def build(
        cls,
        allowed_hosts: Iterable[str] = (),
        *,
        allow_private: bool = False,
        resolver: Resolver | None = None,
        max_redirects: int = 5,
    ) -> GuardPolicy:
        """A policy from `allowed_hosts` strings; ValueError names a bad entry."""
        return cls(
            allowed_hosts=tuple(parse_host_rule(entry) for entry in allowed_hosts),
            allow_private=allow_private,
            resolver=resolver or system_resolver,
            max_redirects=max_redirects,
        )


@dataclass(frozen=True)
class CheckedUrl:
    """A URL the guard approved: `host`/`port` as the transport will see them, and the approved IPs."""

    url: httpx.URL
    host: str
    port: int
    addresses: tuple[str, ...]


def safe_url(url: httpx.URL | str) -> str:
    """The URL without userinfo, query or fragment (which may hold credentials): for messages and logs."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        host = parsed.host if ":" not in parsed.host else f"[{parsed.host}]"
        port = f":{parsed.port}" if parsed.port is not None else ""
        return f"{parsed.scheme}://{host}{port}{parsed.path}"[:300]
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<unparseable URL>"


def refusal(url: httpx.URL | str, reason: str) -> SecurityError:
    where = safe_url(url)
    log.warning("ssrf_refused", url=where, reason=reason)
    return SecurityError(REFUSED_MESSAGE, code=ErrorCode.PERMISSION_DENIED, detail=f"{where}: {reason}")


def parse_url(url: str | httpx.URL) -> httpx.URL:
    """Parse with httpx's own parser (no parser differential with the request) and refuse odd URLs."""
    if isinstance(url, str):
        if len(url) > MAX_URL_CHARS:
            raise refusal("<long URL>", f"the URL is longer than {MAX_URL_CHARS} characters")
        if any(ch in _AMBIGUOUS_CHARS for ch in url):
            raise refusal(url, "the URL holds whitespace, a control character or a backslash")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise refusal(url, f"the URL does not parse ({exc})") from None
    else:
        parsed = url
    if parsed.scheme not in DEFAULT_PORTS:
        raise refusal(parsed, f"scheme {parsed.scheme!r} is not http or https")
    if parsed.userinfo:
        raise refusal(parsed, "the URL carries userinfo (user@host)")
    if not parsed.raw_host:
        raise refusal(parsed, "the URL has no host")
    return parsed


async def check_url(url: str | httpx.URL, policy: GuardPolicy) -> CheckedUrl:
    """Approve `url` or raise: `security` when refused, `transient` when its host cannot be resolved."""
    parsed = parse_url(url)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    try:
        kind = host_kind(host)
    except ValueError as exc:
        raise refusal(parsed, str(exc)) from None
    if isinstance(kind, str):
        trusted = any(rule.matches_host(kind, port) for rule in policy.allowed_hosts)
        addresses = await _resolve(parsed, host, port, policy)
    else:
        trusted, addresses = False, [kind]
    for address in addresses:
        reason = address_refusal(
            address,
            port,
            host_trusted=trusted,
            allow_private=policy.allow_private,
            rules=policy.allowed_hosts,
        )
        if reason is not None:
            raise refusal(parsed, f"{host} resolves to {reason}" if isinstance(kind, str) else reason)
    for deployment in (policy.egress,) if policy.egress is not None else _DEPLOYMENT:
        deployment.judge(host, port, addresses)
    return CheckedUrl(parsed, host, port, tuple(str(a) for a in addresses))


async def _resolve(url: httpx.URL, host: str, port: int, policy: GuardPolicy) -> list[IPAddress]:
    try:
        async with asyncio.timeout(policy.resolve_timeout):
            answers = await policy.resolver(host, port)
    except TimeoutError:
        raise TransientError(
            "resolving the API's host timed out", code=ErrorCode.TIMEOUT, detail=safe_url(url)
        ) from None
    except OSError as exc:
        raise TransientError(
            "cannot resolve the API's host",
            code=ErrorCode.CONNECTION_FAILED,
            detail=f"{safe_url(url)}: {exc}",
        ) from None
    if not answers:
        raise TransientError("the API's host has no address", code=ErrorCode.CONNECTION_FAILED)
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer))
        except ValueError:  # a scoped IPv6 address (fe80::1%eth0) or garbage from a custom resolver
            raise refusal(url, f"{host} resolves to {answer!r}, not a plain IP address") from None
    return addresses
