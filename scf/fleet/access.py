"""Access control where the work is done (docs/access-control.md): who sent a message, and may they.

Who: the AMQP `user_id`, which RabbitMQ checks against the connection's login (no user has the
`impersonator` tag), so it cannot be forged. A trusted forwarder (the gateway, and the fleet's own user
when a dispatcher forwards or a worker sends a sink batch) names the principal it acts for in
`x-scf-principal`, with the grants it verified in `x-scf-grants` (an API key's or a token's); without
grants the name is looked up in the policy. From anyone else those headers are ignored.

What: the policy file (`SCF_POLICY_FILE`) plus the principals and roles stored by the admin API
(`scf:access:*`, read through a short cache). `SCF_AUTH=off` turns all of it off, loudly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import structlog
import yaml
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from scf.fleet import broker_endpoints
from scf.fleet.settings import Settings
from scf.schemas.access import (
    EVERYTHING,
    Grant,
    PolicyDocument,
    Principal,
    PrincipalEntry,
    parse_grant,
)
from scf.schemas.errors import ConnectorError, ErrorCode, SecurityError

log = structlog.get_logger("scf.access")

PRINCIPAL_HEADER = "x-scf-principal"
GRANTS_HEADER = "x-scf-grants"
VIA_HEADER = "x-scf-via"
MAX_HEADER_CHARS = 16_384
MAX_PRINCIPAL_CHARS = 256
MAX_POLICY_BYTES = 4 * 1024 * 1024
#: How long a resolved principal is believed before the policy is read again (admin API changes).
CACHE_SECONDS = 2.0

#: The principal a fleet process is working for right now (set per message; read by outgoing calls).
ACTING_FOR: ContextVar[Principal | None] = ContextVar("scf_acting_for", default=None)


def unauthenticated(why: str) -> SecurityError:
    return SecurityError("authentication required", code=ErrorCode.UNAUTHENTICATED, detail=why)


def forbidden(permission: str, connector: str | None = None) -> SecurityError:
    on = f" on connector {connector!r}" if connector else ""
    return SecurityError(f"permission denied: {permission}{on}", code=ErrorCode.FORBIDDEN)


def load_policy(path: Path | None) -> PolicyDocument:
    """The policy file, validated; a broken file stops the process (never a silently open fleet)."""
    if path is None:
        return PolicyDocument()
    raw = path.read_bytes()
    if len(raw) > MAX_POLICY_BYTES:
        raise ValueError(f"{path}: a policy file is at most {MAX_POLICY_BYTES} bytes")
    data = yaml.safe_load(raw) or {}
    try:
        return PolicyDocument.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{path}: invalid policy: {exc}") from None


def warn_if_off(settings: Settings, role: str) -> None:
    if not settings.auth_enabled:
        log.warning(
            "access_control_off",
            role=role,
            message="SCF_AUTH=off: every caller may do anything. For local development only.",
        )


#: This process's view, set once by its AccessControl: on, its own AMQP login, the trusted forwarders.
_process: dict[str, Any] = {"enabled": False, "login": None, "forwarders": frozenset()}


def carried(user_id: str | None, headers: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The `user_id` and headers of a request this process publishes again (a forward, a delayed retry,
    a dead-letter replay): under its own login, naming the principal the original was from. A trusted
    forwarder's principal headers are kept; anyone else's are dropped (never laundered into trust) and
    the sender itself becomes the principal."""
    if not _process["enabled"]:
        # Never someone else's user_id: RabbitMQ would refuse the publish and close the channel.
        return None, headers
    kept = {k: v for k, v in headers.items() if k not in (PRINCIPAL_HEADER, GRANTS_HEADER, VIA_HEADER)}
    if user_id and user_id in _process["forwarders"]:
        for name in (PRINCIPAL_HEADER, GRANTS_HEADER, VIA_HEADER):
            if name in headers:
                kept[name] = headers[name]
        if PRINCIPAL_HEADER not in kept:
            kept[PRINCIPAL_HEADER], kept[VIA_HEADER] = user_id, "amqp"
    elif user_id:
        kept[PRINCIPAL_HEADER], kept[VIA_HEADER] = user_id, "amqp"
    return _process["login"], kept


class AccessControl:
    """Resolves the principal of a message and checks permissions; one per fleet process."""

    def __init__(self, settings: Settings, policies: PolicySource | None = None) -> None:
        self.enabled = settings.auth_enabled
        self.document = load_policy(settings.scf_policy_file) if self.enabled else PolicyDocument()
        self.own_login = broker_endpoints.login_of(settings.amqp_url)
        self.forwarders = frozenset(settings.trusted_forwarders) | {self.own_login}
        self.policies = policies
        self.default_rate = settings.scf_rate_limit
        self.default_burst = settings.scf_rate_burst
        self._cache: dict[tuple[str, str], tuple[float, Principal | None]] = {}
        #: the fleet's own login acting for itself: everything, never charged (it is a trusted forwarder,
        #: which may name any principal, so this grants it nothing it does not have)
        self.fleet = Principal(self.own_login, frozenset({Grant(EVERYTHING)}), via="fleet", rate=0)
        _process.update(enabled=self.enabled, login=self.own_login, forwarders=self.forwarders)

    def forwarded(self, message: AbstractIncomingMessage) -> bool:
        """Did a trusted forwarder send this (so the first hop already charged its quota)?"""
        return bool(message.user_id) and message.user_id in self.forwarders

    async def principal_of(self, message: AbstractIncomingMessage) -> Principal | None:
        """Who sent `message` (None when access control is off). Refuses a message with no user_id or
        from a principal the policy does not know."""
        if not self.enabled:
            return None
        user = message.user_id
        if not user:
            raise unauthenticated("the message has no user_id (the broker-verified sender)")
        headers = message.headers or {}
        if user in self.forwarders and PRINCIPAL_HEADER in headers:
            return await self._forwarded(headers)
        if user == self.own_login:  # the fleet itself (health tests, discovery): it may name anyone anyway
            return self.fleet
        return await self.named(user, via="amqp")

    async def named(self, name: str, *, via: str, extra: Iterable[Grant] = ()) -> Principal:
        """The principal called `name` in the policy (file or admin API), with `extra` grants."""
        now = time.monotonic()
        cached = self._cache.get((name, via))
        if cached is None or cached[0] < now:
            cached = (now + CACHE_SECONDS, await self._resolve(name, via))
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[(name, via)] = cached
        found = cached[1]
        extra = frozenset(extra)
        if found is None:
            if extra:
                return self.stranger(name, via, extra)
            raise unauthenticated(f"unknown principal {name[:64]!r}")
        if extra:
            return Principal(name, found.grants | extra, via=via, rate=found.rate, burst=found.burst)
        return found

    async def _resolve(self, name: str, via: str) -> Principal | None:
        roles = dict(self.document.roles)
        entry = self.document.principals.get(name)
        if self.policies is not None:
            stored_roles, stored = await self.policies.lookup(name)
            roles.update(stored_roles)
            if stored is not None:
                entry = stored
        if entry is None:
            return None
        return self._with_rate(Principal(name, self.document.grants_of(entry, roles), via=via), entry)

    def stranger(self, name: str, via: str, grants: frozenset[Grant] = frozenset()) -> Principal:
        """A principal the policy does not name (an API key's or a token's own grants, maybe none),
        at the deployment's default rate: every authenticated caller pays its quota."""
        return self._with_rate(Principal(name, grants, via=via), None)

    def _with_rate(self, principal: Principal, entry: PrincipalEntry | None) -> Principal:
        rate = entry.rate if entry is not None and entry.rate is not None else self.default_rate
        burst = entry.burst if entry is not None and entry.burst is not None else self.default_burst
        return Principal(principal.name, principal.grants, via=principal.via, rate=rate, burst=burst)

    async def _forwarded(self, headers: dict[str, Any]) -> Principal:
        name = _text(headers.get(PRINCIPAL_HEADER))
        if not name or len(name) > MAX_PRINCIPAL_CHARS:
            raise unauthenticated("a forwarded request names no principal (or one over 256 characters)")
        via = _text(headers.get(VIA_HEADER)) or "forwarded"
        raw = headers.get(GRANTS_HEADER)
        if raw is None:
            return await self.named(name, via=via)
        grants = _grants(_text(raw))
        try:
            return await self.named(name, via=via, extra=grants)
        except ConnectorError:
            return self.stranger(name, via, grants)

    def require(self, principal: Principal | None, permission: str, connector: str | None = None) -> None:
        """Refuse unless `principal` (None: access control off) may use `permission`."""
        if principal is None or principal.allows(permission, connector):
            return
        log.warning("access_denied", principal=principal.name, permission=permission, connector=connector)
        raise forbidden(permission, connector)


class PolicySource:
    """Principals and roles stored by the admin API (implemented over Redis in `access_store`)."""

    async def lookup(self, name: str) -> tuple[dict[str, list[str]], PrincipalEntry | None]:
        raise NotImplementedError


@contextmanager
def acting_for(principal: Principal | None) -> Iterator[None]:
    """Calls made inside carry `principal` (see scf/fleet/rpc.py)."""
    token = ACTING_FOR.set(principal)
    try:
        yield
    finally:
        ACTING_FOR.reset(token)


def forwarding_headers(principal: Principal | None) -> dict[str, str]:
    """The headers a trusted forwarder sends for `principal` (none when access control is off)."""
    if principal is None:
        return {}
    headers = {PRINCIPAL_HEADER: principal.name, VIA_HEADER: principal.via}
    if principal.via != "amqp":  # an AMQP user's grants are the policy's: the next hop reads them there
        headers[GRANTS_HEADER] = " ".join(principal.grant_texts())
    return headers


def _text(value: Any) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
    return text[:MAX_HEADER_CHARS]


def _grants(text: str) -> frozenset[Grant]:
    found = set()
    for item in text.split()[:256]:
        try:
            found.add(parse_grant(item))
        except ValueError:
            continue  # a forwarder never sends one; a stray entry grants nothing
    return frozenset(found)
