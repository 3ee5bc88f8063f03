"""Who is calling the gateway, and may they (docs/access-control.md): API keys and OIDC bearer JWTs.

`Authorization: Bearer <token>` or `X-API-Key: <key>`. A token starting `scf_` is an API key (verified
against its hash in Redis, the answer kept `KEY_CACHE_SECONDS` keyed by the SHA-256 of what was
presented, never the secret itself); any other bearer token is a JWT (`scf.gateway.oidc`). Every route
has a decision in `ROUTES` (open, authenticated, or any of some permissions), checked here early; the
fleet checks again where the work is done. `GuardedRoute` refuses to build a route without a decision.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

import structlog
from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from scf.fleet.access import ACTING_FOR, AccessControl, forbidden, unauthenticated
from scf.fleet.access_store import KEY_PREFIX, AccessStore, ApiKeyStore
from scf.fleet.quotas import RateLimiter
from scf.fleet.settings import Settings
from scf.gateway.oidc import JwtVerifier
from scf.gateway.strict_json import StrictJSONRoute
from scf.schemas.access import Grant, Principal, parse_grant
from scf.schemas.errors import ConnectorError, ErrorCode

log = structlog.get_logger("scf.access")

KEY_CACHE_SECONDS = 5.0
MAX_CACHED_KEYS = 10_000
MAX_KEY_CHARS = 256

API_KEY = APIKeyHeader(
    name="X-API-Key", scheme_name="ApiKey", auto_error=False, description="an API key (`scf_...`)"
)
BEARER = HTTPBearer(
    scheme_name="Bearer",
    bearerFormat="JWT",
    auto_error=False,
    description="an OIDC access token (JWT), or an API key as the bearer token",
)


@dataclass(frozen=True)
class Rule:
    """A route's access decision: open, or authenticated with any one of `any_of` (none: any caller)."""

    any_of: tuple[str, ...] = ()
    per_connector: bool = False  # checked on the path's `service_name`
    open: bool = False


OPEN = Rule(open=True)
AUTHENTICATED = Rule()
READ = Rule(("connectors:read",))
WRITE = Rule(("connectors:write",))
METRICS = Rule(("metrics:read",))
KEYS = Rule(("keys:admin",))

#: (method, path) -> decision, for every route the gateway serves (a new route without one fails).
ROUTES: dict[tuple[str, str], Rule] = {
    ("POST", "/connectors"): WRITE,
    ("GET", "/connectors"): READ,
    ("GET", "/connectors/{service_name}"): READ,
    ("PUT", "/connectors/{service_name}"): WRITE,
    ("DELETE", "/connectors/{service_name}"): WRITE,
    ("POST", "/connectors/{service_name}/execute"): Rule(("execute:read", "execute:write"), True),
    ("POST", "/connectors/{service_name}/test"): READ,
    ("POST", "/connectors/{service_name}/pause"): WRITE,
    ("POST", "/connectors/{service_name}/resume"): WRITE,
    ("GET", "/connectors/{service_name}/status"): READ,
    ("GET", "/connectors/{service_name}/metrics"): METRICS,
    ("GET", "/operations/{operation_id}"): AUTHENTICATED,  # the fleet answers only the owner
    ("POST", "/operations/{operation_id}/cancel"): AUTHENTICATED,  # likewise
    ("GET", "/connector-types"): READ,
    ("POST", "/connector-types/{service_type}/validate"): READ,
    ("GET", "/metrics"): METRICS,
    ("GET", "/metrics/prometheus"): METRICS,
    ("GET", "/dead-letters"): Rule(("dead_letters:read",)),
    ("POST", "/dead-letters/replay"): Rule(("dead_letters:write",)),
    ("POST", "/dead-letters/purge"): Rule(("dead_letters:write",)),
    ("GET", "/asyncapi.json"): OPEN,
    ("GET", "/healthz"): OPEN,
    ("GET", "/readyz"): OPEN,
    ("POST", "/keys"): KEYS,
    ("GET", "/keys"): KEYS,
    ("DELETE", "/keys/{key_id}"): KEYS,
    ("GET", "/access/principals"): KEYS,
    ("GET", "/access/principals/{name}"): KEYS,
    ("PUT", "/access/principals/{name}"): KEYS,
    ("DELETE", "/access/principals/{name}"): KEYS,
    ("PUT", "/access/roles/{name}"): KEYS,
}


def rule_for(methods: Iterable[str], path: str) -> Rule:
    """The one decision for a route; a route nobody decided on is a programming error."""
    rules = {ROUTES.get((method.upper(), path)) for method in methods}
    if None in rules or len(rules) != 1:
        raise RuntimeError(
            f"no access decision for {sorted(methods)} {path}: add it to scf.gateway.auth.ROUTES"
        )
    (rule,) = rules
    assert rule is not None
    return rule


class Authenticator:
    """Turns a request's credentials into a Principal (None: access control is off) and checks rules."""

    def __init__(
        self,
        settings: Settings,
        access: AccessControl,
        keys: ApiKeyStore | None,
        store: AccessStore | None,
        *,
        key_cache_seconds: float = KEY_CACHE_SECONDS,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.enabled = settings.auth_enabled
        #: HTTP requests are charged here, their first door (the fleet believes the gateway's charge)
        self.limiter = limiter
        self.access = access
        self.keys = keys
        self.store = store
        self.jwt = _verifier(settings)
        self.key_cache_seconds = key_cache_seconds
        self._key_cache: dict[str, tuple[float, Principal | None]] = {}

    async def close(self) -> None:
        if self.jwt is not None:
            await self.jwt.close()

    def forget_keys(self) -> None:
        """Drop every cached key verdict (after a revocation through this gateway)."""
        self._key_cache.clear()

    async def authenticate(self, api_key: str | None, bearer: str | None) -> Principal | None:
        if not self.enabled:
            return None
        if api_key is not None and bearer is not None:
            raise unauthenticated("both X-API-Key and Authorization given: send one credential")
        token = api_key if api_key is not None else bearer
        if not token:
            raise unauthenticated("no credentials")
        if api_key is not None or token.startswith(KEY_PREFIX):
            return await self._api_key(token)
        if self.jwt is None:
            raise unauthenticated("bearer tokens are not configured (SCF_OIDC_*)")
        name, grants = await self.jwt.verify(token)
        return await self._principal(name, "jwt", grants)

    def authorize(self, principal: Principal | None, rule: Rule, connector: str | None) -> None:
        if principal is None or not rule.any_of:
            return
        on = connector if rule.per_connector else None
        if not any(principal.allows(permission, on) for permission in rule.any_of):
            log.warning("access_denied", principal=principal.name, permission=rule.any_of, connector=on)
            raise forbidden(" or ".join(rule.any_of), on)

    async def _api_key(self, presented: str) -> Principal:
        digest = hashlib.sha256(presented.encode("utf-8", "replace")).hexdigest()
        now = time.monotonic()
        cached = self._key_cache.get(digest)
        if cached is None or cached[0] < now:
            cached = (now + self.key_cache_seconds, await self._verify_key(presented))
            if len(self._key_cache) >= MAX_CACHED_KEYS:
                self._key_cache.clear()
            self._key_cache[digest] = cached
        if cached[1] is None:
            raise unauthenticated("unknown, expired or revoked API key")
        return cached[1]

    async def _verify_key(self, presented: str) -> Principal | None:
        if self.keys is None or len(presented) > MAX_KEY_CHARS:
            return None
        info = await self.keys.verify(presented)
        if info is None:
            return None
        roles = dict(self.access.document.roles)
        if self.store is not None:
            roles.update((await self.store.lookup(info.name))[0])
        texts = [*info.grants, *(g for role in info.roles for g in roles.get(role, ()))]
        return await self._principal(info.name, "key", _parsed(texts))

    async def _principal(self, name: str, via: str, grants: frozenset[Grant]) -> Principal:
        """`name` with `grants` plus its policy entry's; a stranger with no grants may do nothing."""
        try:
            return await self.access.named(name, via=via, extra=grants)
        except ConnectorError as exc:
            if exc.code != ErrorCode.UNAUTHENTICATED:
                raise
            return self.access.stranger(name, via)  # at the default rate, like everyone


def _verifier(settings: Settings) -> JwtVerifier | None:
    issuer, audience, url = settings.scf_oidc_issuer, settings.scf_oidc_audience, settings.scf_oidc_jwks_url
    if not (issuer and audience and url):
        return None  # bearer JWTs need all three: an issuer's keys, and tokens meant for us
    return JwtVerifier(url, issuer, audience, settings.scf_oidc_grants_claim)


def _parsed(texts: Iterable[str]) -> frozenset[Grant]:
    found = set()
    for text in texts:
        try:
            found.add(parse_grant(text))
        except ValueError:
            continue  # a role changed under a key: an entry that no longer parses grants nothing
    return frozenset(found)


Guard = Callable[..., AsyncIterator[Principal | None]]


@cache
def guard(rule: Rule) -> Guard:
    """The dependency enforcing `rule`: authenticates, authorizes, and names the principal for the
    request (`request.state.principal` for the audit line, `ACTING_FOR` for calls to the fleet)."""

    async def authorize(
        request: Request,
        api_key: Annotated[str | None, Security(API_KEY)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    ) -> AsyncIterator[Principal | None]:
        auth: Authenticator = request.app.state.auth
        # refused even beside an API key: a request's credentials are all well formed or it is refused
        if auth.enabled and bearer is None and "authorization" in request.headers:
            raise unauthenticated("the Authorization header is not a bearer token")
        principal = await auth.authenticate(api_key, bearer.credentials if bearer else None)
        request.state.principal = principal
        auth.authorize(principal, rule, request.path_params.get("service_name"))
        if principal is not None and auth.limiter is not None:
            await auth.limiter.charge(principal)  # RATE_LIMITED -> 429 with Retry-After
        token = ACTING_FOR.set(principal)  # for the fleet calls this request makes
        try:
            yield principal
        finally:
            ACTING_FOR.reset(token)

    return authorize


class GuardedRoute(StrictJSONRoute):
    """A route that carries its access decision from `ROUTES` (and refuses to exist without one)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        rule = rule_for(kwargs.get("methods") or ["GET"], path)
        if not rule.open:
            kwargs["dependencies"] = [*(kwargs.get("dependencies") or []), Security(guard(rule))]
        super().__init__(path, endpoint, **kwargs)


def add_openid_connect(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Declare the OIDC provider (when configured) as a third way to authenticate every protected route."""
    if not settings.scf_oidc_issuer:
        return document
    url = settings.scf_oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["OpenIdConnect"] = {"type": "openIdConnect", "openIdConnectUrl": url}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("security"):
                operation["security"].append({"OpenIdConnect": []})
    return document
